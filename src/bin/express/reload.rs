//! `--reload-on-changes`: a thread that polls the modification times of the application's
//! Python files and restarts the application when one changes.
//!
//! The module itself already restarts a daemon when the WSGI script file changes, but not
//! when a module the script imports does; and a module application's code is never the
//! script. So we watch every `.py` file under the working directory (plus the script), and on
//! a change send Apache a graceful restart (SIGUSR1), which replaces the daemon processes (or,
//! in embedded mode, Apache's children) without dropping requests in flight. Polling once a
//! second keeps this std-only and is cheap for a project-sized tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::settings::{App, Server};

/// More files than this is not a project but a whole tree (a home directory, `/`): stop
/// scanning rather than spend the CPU.
const MAX_FILES: usize = 20_000;

/// Directory names never worth watching.
fn skipped(name: &str) -> bool {
    name.starts_with('.') || matches!(name, "__pycache__" | "node_modules" | "site-packages")
}

/// Modification times of the watched files.
pub fn snapshot(root: &Path, extra: &[PathBuf]) -> BTreeMap<PathBuf, SystemTime> {
    let mut found = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        // A virtualenv inside the project: its packages are not the project's code.
        if dir.join("pyvenv.cfg").exists() {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            if kind.is_dir() && !skipped(&name) {
                stack.push(path);
            } else if kind.is_file() && name.ends_with(".py") {
                if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                    found.insert(path, modified);
                }
            }
            if found.len() >= MAX_FILES {
                return found;
            }
        }
    }
    for path in extra {
        if let Ok(modified) = std::fs::metadata(path).and_then(|m| m.modified()) {
            found.insert(path.clone(), modified);
        }
    }
    found
}

/// The first path whose time changed, appeared or disappeared between two snapshots.
pub fn changed(
    before: &BTreeMap<PathBuf, SystemTime>,
    after: &BTreeMap<PathBuf, SystemTime>,
) -> Option<PathBuf> {
    let modified = after.iter().find(|(path, time)| before.get(*path) != Some(time));
    let removed = || before.keys().find(|path| !after.contains_key(*path));
    modified.map(|(path, _)| path.clone()).or_else(|| removed().cloned())
}

/// Starts the watcher thread for `s`.
pub fn watch(s: &Server) {
    let root = s.working_directory.clone();
    let extra: Vec<PathBuf> = match &s.app {
        App::Script(path) => vec![path.clone()],
        App::Module { .. } => Vec::new(),
    };
    let spawned = std::thread::Builder::new().name("reload".into()).spawn(move || {
        let mut before = snapshot(&root, &extra);
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let after = snapshot(&root, &extra);
            if let Some(path) = changed(&before, &after) {
                eprintln!(
                    "mod_wsgi_rs-express: {} changed; restarting the application",
                    path.display()
                );
                crate::server::graceful_restart();
            }
            before = after;
        }
    });
    if let Err(e) = spawned {
        eprintln!("mod_wsgi_rs-express: cannot watch for changes: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_python_files_and_their_changes() {
        let dir = std::env::temp_dir().join(format!("express-reload-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("pkg/__pycache__")).unwrap();
        std::fs::create_dir_all(dir.join("venv/lib")).unwrap();
        std::fs::write(dir.join("venv/pyvenv.cfg"), "").unwrap();
        std::fs::write(dir.join("venv/lib/x.py"), "").unwrap();
        std::fs::write(dir.join("pkg/app.py"), "").unwrap();
        std::fs::write(dir.join("pkg/__pycache__/app.py"), "").unwrap();
        std::fs::write(dir.join("notes.txt"), "").unwrap();
        let before = snapshot(&dir, &[]);
        assert_eq!(before.keys().collect::<Vec<_>>(), [&dir.join("pkg/app.py")]);
        assert_eq!(changed(&before, &before), None);

        let mut after = before.clone();
        after.insert(dir.join("pkg/new.py"), SystemTime::now());
        assert_eq!(changed(&before, &after), Some(dir.join("pkg/new.py")));
        assert_eq!(changed(&after, &before), Some(dir.join("pkg/new.py")), "removal");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
