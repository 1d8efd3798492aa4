//! Where the module is, and putting it into a system Apache: `module-config` prints the lines
//! to paste into a configuration, `install-module` copies the module and Debian-style
//! `wsgi_rs.load`/`wsgi_rs.conf` files so `a2enmod wsgi_rs` works.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The module's file name as cargo builds it.
const BUILT_NAME: &str = "libmod_wsgi_rs.so";
/// The module's file name once installed (Debian's `mod_<name>.so` convention).
pub const INSTALLED_NAME: &str = "mod_wsgi_rs.so";
/// Debian's module directory, used when `apxs` is not installed.
const DEBIAN_MODULES: &str = "/usr/lib/apache2/modules";

/// The `.load`/`.conf` pair shipped in `apache-conf/`.
const LOAD_FILE: &str = include_str!("../../../apache-conf/wsgi_rs.load");
const CONF_FILE: &str = include_str!("../../../apache-conf/wsgi_rs.conf");

/// Apache's module directory: `apxs -q LIBEXECDIR`.
fn apxs_libexecdir() -> Option<PathBuf> {
    let out = Command::new("apxs").args(["-q", "LIBEXECDIR"]).output().ok()?;
    let dir = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
}

/// Finds the module: `--module`, else the one cargo built next to this program
/// (`target/<profile>/`), else the installed one.
pub fn find_module(explicit: Option<&str>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        let path = std::path::absolute(path).map_err(|e| format!("--module {path}: {e}"))?;
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("--module: '{}' does not exist", path.display()))
        };
    }
    let mut tried = Vec::new();
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf))
    {
        tried.push(dir.join(BUILT_NAME));
    }
    tried.push(apxs_libexecdir().unwrap_or_else(|| DEBIAN_MODULES.into()).join(INSTALLED_NAME));
    if let Some(found) = tried.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "cannot find the mod_wsgi_rs module (looked for {}); build it with `cargo build`, \
         or pass --module PATH",
        list.join(" and ")
    ))
}

/// `module-config`: the lines that load the module into a system Apache, and the virtualenv
/// (`$VIRTUAL_ENV`) as its Python home when one is active.
pub fn module_config(module: &Path, virtual_env: Option<&str>) -> String {
    let mut text = format!("LoadModule wsgi_module \"{}\"\n", module.display());
    if let Some(venv) = virtual_env.filter(|v| !v.is_empty()) {
        text.push_str(&format!("WSGIPythonHome \"{venv}\"\n"));
    }
    text
}

/// The `.load` file with the `LoadModule` line pointing at `installed`.
fn load_file(installed: &Path) -> String {
    LOAD_FILE
        .lines()
        .map(|line| {
            if line.starts_with("LoadModule wsgi_module") {
                format!("LoadModule wsgi_module {}", installed.display())
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Writes `contents` to `path` through a temporary file and a rename, so Apache never reads
/// half a file.
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("express-tmp");
    let result = fs::write(&tmp, contents)
        .and_then(|()| fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)))
        .and_then(|()| fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// `install-module`. Returns what was done, one line each.
pub fn install_module(
    module: &Path,
    modules_dir: Option<&str>,
    conf_dir: &Path,
) -> Result<Vec<String>, String> {
    // Both define `wsgi_module` (the name existing configurations test for), so Apache
    // refuses to load the second; installing beside an enabled mod_wsgi would leave a
    // configuration that fails at the next restart.
    let enabled = conf_dir.join("mods-enabled").join("wsgi.load");
    if enabled.exists() {
        return Err(format!(
            "Debian's mod_wsgi is enabled ({}). mod_wsgi_rs replaces it and cannot be loaded \
             beside it. Disable it first with `a2dismod wsgi`, then run install-module again.",
            enabled.display()
        ));
    }
    let modules_dir = match modules_dir {
        Some(dir) => PathBuf::from(dir),
        None => apxs_libexecdir().ok_or(
            "cannot run `apxs -q LIBEXECDIR` (install apache2-dev), or pass --modules-dir DIR",
        )?,
    };
    let available = conf_dir.join("mods-available");
    for dir in [&modules_dir, &available] {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let installed = modules_dir.join(INSTALLED_NAME);
    let bytes = fs::read(module).map_err(|e| format!("cannot read {}: {e}", module.display()))?;
    write_atomic(&installed, &bytes, 0o644)?;
    let mut done = vec![format!("installed {} as {}", module.display(), installed.display())];
    let load = available.join("wsgi_rs.load");
    write_atomic(&load, load_file(&installed).as_bytes(), 0o644)?;
    done.push(format!("wrote {}", load.display()));
    // The .conf is the administrator's to edit: keep theirs.
    let conf = available.join("wsgi_rs.conf");
    if conf.exists() {
        done.push(format!("kept the existing {}", conf.display()));
    } else {
        write_atomic(&conf, CONF_FILE.as_bytes(), 0o644)?;
        done.push(format!("wrote {}", conf.display()));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_file_points_at_the_installed_module() {
        let text = load_file(Path::new("/m/mod_wsgi_rs.so"));
        assert!(text.contains("\nLoadModule wsgi_module /m/mod_wsgi_rs.so\n"), "{text}");
        assert!(text.starts_with('#'), "keeps the comment");
    }

    #[test]
    fn module_config_lines() {
        let m = Path::new("/x/libmod_wsgi_rs.so");
        assert_eq!(module_config(m, None), "LoadModule wsgi_module \"/x/libmod_wsgi_rs.so\"\n");
        let text = module_config(m, Some("/venv"));
        assert!(text.ends_with("WSGIPythonHome \"/venv\"\n"));
        assert_eq!(module_config(m, Some("")).lines().count(), 1);
    }

    #[test]
    fn explicit_module_must_exist() {
        let err = find_module(Some("/nonexistent/mod.so")).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
    }
}
