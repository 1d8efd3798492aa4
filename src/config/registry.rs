//! The daemon process groups defined so far in the configuration being read.
//!
//! Group names are unique across the whole configuration, and `WSGIScriptAlias` /
//! `WSGIImportScript` may only name a group that an earlier `WSGIDaemonProcess` defined in a
//! server they can see. A directive only gets its own server's config, so these checks need one
//! list shared by all servers; it lives here, in a static, as mod_wsgi keeps its list in a
//! global.
//!
//! Apache reads the configuration more than once per process (twice at start-up, again on every
//! restart), so the list must be emptied before each read: the glue calls [`reset`] from its
//! `pre_config` hook.

use std::sync::{Mutex, MutexGuard};

use super::daemon::DaemonProcess;

/// The groups defined so far, in definition order.
#[derive(Debug, Default)]
pub struct GroupRegistry {
    groups: Vec<DaemonProcess>,
}

impl GroupRegistry {
    /// Records `group`, refusing a name that is already taken anywhere in the configuration.
    pub fn define(&mut self, group: &DaemonProcess) -> Result<(), String> {
        if self.groups.iter().any(|g| g.name == group.name) {
            return Err(format!(
                "a daemon process group named '{}' is already defined",
                group.name
            ));
        }
        self.groups.push(group.clone());
        Ok(())
    }

    /// Checks that `name` was defined earlier and may be used from a server whose
    /// `ServerName` is `server_name`: a group from the main server is usable everywhere, one
    /// from a `<VirtualHost>` only where the `ServerName` is the same.
    pub fn check_usable(&self, name: &str, server_name: Option<&str>) -> Result<(), String> {
        let Some(group) = self.groups.iter().find(|g| g.name == name) else {
            return Err(format!(
                "WSGI process group not yet configured: no earlier WSGIDaemonProcess defines \
                 '{name}'"
            ));
        };
        if group.visible_from(server_name) {
            return Ok(());
        }
        let defined_in =
            group.server_name.as_deref().unwrap_or("a virtual host without ServerName");
        Err(format!(
            "WSGI process group '{name}' is not accessible here: it was defined in {defined_in} \
             and can only be used by servers with the same ServerName"
        ))
    }
}

static REGISTRY: Mutex<GroupRegistry> = Mutex::new(GroupRegistry { groups: Vec::new() });

/// Locks the shared registry. A panic while it was held cannot leave it half-updated (each
/// change is one push), so a poisoned lock is simply taken over.
pub fn shared() -> MutexGuard<'static, GroupRegistry> {
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Forgets every group: call before each read of the configuration.
pub fn reset() {
    shared().groups.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, server_name: Option<&str>, in_virtual_host: bool) -> DaemonProcess {
        let mut d = DaemonProcess::new(name);
        d.server_name = server_name.map(str::to_string);
        d.in_virtual_host = in_virtual_host;
        d
    }

    #[test]
    fn duplicate_names_are_refused_across_servers() {
        let mut r = GroupRegistry::default();
        r.define(&group("app", None, false)).unwrap();
        let err = r.define(&group("app", Some("v.example"), true)).unwrap_err();
        assert!(err.contains("'app'") && err.contains("already defined"), "{err}");
    }

    #[test]
    fn undefined_group_is_not_yet_configured() {
        let r = GroupRegistry::default();
        let err = r.check_usable("later", None).unwrap_err();
        assert!(err.contains("WSGI process group not yet configured"), "{err}");
    }

    #[test]
    fn visibility_rules() {
        let mut r = GroupRegistry::default();
        r.define(&group("main", Some("main.example"), false)).unwrap();
        r.define(&group("a", Some("a.example"), true)).unwrap();
        r.define(&group("anon", None, true)).unwrap();
        assert!(r.check_usable("main", Some("other.example")).is_ok());
        assert!(r.check_usable("main", None).is_ok());
        assert!(r.check_usable("a", Some("a.example")).is_ok());
        assert!(r.check_usable("a", Some("b.example")).unwrap_err().contains("a.example"));
        assert!(r.check_usable("a", None).is_err());
        assert!(r.check_usable("anon", None).is_ok());
        assert!(r.check_usable("anon", Some("a.example")).is_err());
    }
}
