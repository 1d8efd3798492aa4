//! `WSGIScriptAlias` and `WSGIScriptAliasMatch`: which request URIs belong to a WSGI script and
//! what file name Apache should see for them.
//!
//! [`translate`] does the work of mod_wsgi's `translate_name` hook: the first alias that matches
//! (in configuration order, a virtual host's own before the main server's) gives
//! `r->filename`, which is the target followed by the part of the URI the alias did not
//! consume. Apache then walks that path, finds where the script file ends and makes the rest
//! `PATH_INFO`; that split is not done here.

use super::pcre::{Captures, Regex};

use super::server::ImportScript;

/// Options given after the target of a script alias. Values are kept as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AliasOptions {
    /// `process-group=`: overrides `WSGIProcessGroup` for requests through this alias.
    pub process_group: Option<String>,
    /// `application-group=`: overrides `WSGIApplicationGroup`.
    pub application_group: Option<String>,
    /// `callable-object=`: overrides `WSGICallableObject`.
    pub callable_object: Option<String>,
    /// `pass-authorization=`: overrides `WSGIPassAuthorization`.
    pub pass_authorization: Option<bool>,
}

/// How an alias recognises its URIs.
#[derive(Clone, Debug)]
pub enum AliasPattern {
    /// `WSGIScriptAlias`: a URL-path prefix, matched segment by segment.
    Prefix(String),
    /// `WSGIScriptAliasMatch`: a regular expression searched for anywhere in the URI (anchor
    /// it with `^` to match from the start).
    Regex(Regex),
}

/// One `WSGIScriptAlias` or `WSGIScriptAliasMatch` line.
#[derive(Clone, Debug)]
pub struct ScriptAlias {
    /// What the alias matches.
    pub pattern: AliasPattern,
    /// The file or directory path; for the regex form it may contain `$0`..`$9`.
    pub target: String,
    /// The `name=value` options.
    pub options: AliasOptions,
}

/// The result of mapping a URI through an alias.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Value for `r->filename`: the target followed by the unmatched rest of the URI (bytes,
    /// as the URI may hold any after %-decoding).
    pub filename: Vec<u8>,
    /// The matching alias's options.
    pub options: AliasOptions,
}

/// Returns how many bytes of `uri` the prefix `alias` covers, or `None` if it does not match.
///
/// This is mod_alias's rule, which mod_wsgi copies: each run of `/` in the alias matches a run
/// of one or more `/` in the URI, other bytes must be equal, and the match must end at a
/// segment boundary, so `/app` matches `/app` and `/app/x` but not `/application`.
fn prefix_len(uri: &[u8], alias: &str) -> Option<usize> {
    let (a, u) = (alias.as_bytes(), uri);
    let (mut i, mut j) = (0, 0);
    while i < a.len() {
        if a[i] == b'/' {
            if u.get(j) != Some(&b'/') {
                return None;
            }
            while a.get(i) == Some(&b'/') {
                i += 1;
            }
            while u.get(j) == Some(&b'/') {
                j += 1;
            }
        } else {
            if u.get(j) != Some(&a[i]) {
                return None;
            }
            i += 1;
            j += 1;
        }
    }
    let ends_in_slash = a.last() == Some(&b'/');
    if !ends_in_slash && j < u.len() && u[j] != b'/' {
        return None;
    }
    (j > 0).then_some(j)
}

/// Expands `$0`..`$9` in `template` from `caps` the way Apache's `ap_pregsub` does: a group
/// that did not take part, or matched nothing, expands to nothing; a backslash makes the next
/// character literal (so `\$1` is `$1`).
fn substitute(template: &str, caps: &Captures<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len());
    let mut bytes = template.bytes().peekable();
    while let Some(b) = bytes.next() {
        match (b, bytes.peek().copied()) {
            (b'$', Some(d)) if d.is_ascii_digit() => {
                bytes.next();
                out.extend_from_slice(caps.get(usize::from(d - b'0')).unwrap_or_default());
            }
            (b'\\', Some(next)) => {
                bytes.next();
                out.push(next);
            }
            _ => out.push(b),
        }
    }
    out
}

impl ScriptAlias {
    /// Where this alias sends `uri`, if it matches.
    fn filename(&self, uri: &[u8]) -> Option<Vec<u8>> {
        let (mut filename, matched) = match &self.pattern {
            AliasPattern::Prefix(prefix) => {
                let matched = prefix_len(uri, prefix)?;
                // A mount at exactly "/" keeps the whole URI, leading slash included.
                (self.target.as_bytes().to_vec(), if prefix == "/" { 0 } else { matched })
            }
            AliasPattern::Regex(re) => {
                let caps = re.captures(uri)?;
                let end = caps.end();
                if end == 0 {
                    return None;
                }
                // A match of just "/" keeps the whole URI too.
                (substitute(&self.target, &caps), if &uri[..end] == b"/" { 0 } else { end })
            }
        };
        filename.extend_from_slice(&uri[matched..]);
        Some(filename)
    }

    /// The script to load at process start for this alias, if any. Like mod_wsgi, only an
    /// alias whose process and application groups are both given as fixed names (`%{GLOBAL}`
    /// allowed) is preloaded, and for the regex form only when the target has no `$`.
    pub fn preload(&self) -> Option<ImportScript> {
        let fixed = |name: &Option<String>| match name.as_deref() {
            Some("%{GLOBAL}") => Some(String::new()),
            Some(n) if !n.contains("%{") => Some(n.to_string()),
            _ => None,
        };
        if matches!(self.pattern, AliasPattern::Regex(_)) && self.target.contains('$') {
            return None;
        }
        Some(ImportScript {
            path: self.target.clone(),
            process_group: fixed(&self.options.process_group)?,
            application_group: fixed(&self.options.application_group)?,
        })
    }
}

/// Maps a request URI (`r->uri`, already %-decoded) through `aliases`, first match wins.
/// URIs that do not start with `/` (such as `*`) never match.
pub fn translate(aliases: &[ScriptAlias], uri: &[u8]) -> Option<Translation> {
    if !uri.starts_with(b"/") {
        return None;
    }
    aliases.iter().find_map(|alias| {
        let filename = alias.filename(uri)?;
        Some(Translation { filename, options: alias.options.clone() })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(p: &str, target: &str) -> ScriptAlias {
        ScriptAlias {
            pattern: AliasPattern::Prefix(p.into()),
            target: target.into(),
            options: AliasOptions::default(),
        }
    }

    fn regex(re: &str, target: &str) -> ScriptAlias {
        ScriptAlias {
            pattern: AliasPattern::Regex(Regex::new(re).unwrap()),
            target: target.into(),
            options: AliasOptions::default(),
        }
    }

    fn file(aliases: &[ScriptAlias], uri: &str) -> Option<String> {
        translate(aliases, uri.as_bytes()).map(|t| String::from_utf8(t.filename).unwrap())
    }

    #[test]
    fn prefix_without_trailing_slash_is_segment_aware() {
        let a = [prefix("/app", "/srv/app.wsgi")];
        assert_eq!(file(&a, "/app").as_deref(), Some("/srv/app.wsgi"));
        assert_eq!(file(&a, "/app/").as_deref(), Some("/srv/app.wsgi/"));
        assert_eq!(file(&a, "/app/x/y").as_deref(), Some("/srv/app.wsgi/x/y"));
        assert_eq!(file(&a, "/application"), None);
        assert_eq!(file(&a, "/ap"), None);
    }

    #[test]
    fn prefix_with_trailing_slash_needs_the_slash() {
        let a = [prefix("/app/", "/srv/scripts/")];
        assert_eq!(file(&a, "/app"), None);
        assert_eq!(
            file(&a, "/app/hello.wsgi/info").as_deref(),
            Some("/srv/scripts/hello.wsgi/info")
        );
    }

    #[test]
    fn root_mount_matches_everything_and_keeps_the_uri() {
        let a = [prefix("/", "/srv/site.wsgi")];
        assert_eq!(file(&a, "/").as_deref(), Some("/srv/site.wsgi/"));
        assert_eq!(file(&a, "/a/b").as_deref(), Some("/srv/site.wsgi/a/b"));
        assert_eq!(file(&a, "//a").as_deref(), Some("/srv/site.wsgi//a"));
        assert_eq!(file(&a, "*"), None);
        assert_eq!(file(&a, ""), None);
    }

    #[test]
    fn runs_of_slashes_in_the_uri_match_one_slash() {
        let a = [prefix("/a/b", "/srv/x.wsgi")];
        assert_eq!(file(&a, "//a///b//c").as_deref(), Some("/srv/x.wsgi//c"));
        assert_eq!(file(&[prefix("/a//b", "/t")], "/a/b").as_deref(), Some("/t"));
    }

    #[test]
    fn directory_target_gets_the_script_name_appended() {
        let a = [prefix("/wsgi", "/srv/wsgi-scripts")];
        assert_eq!(
            file(&a, "/wsgi/hello.py/extra").as_deref(),
            Some("/srv/wsgi-scripts/hello.py/extra")
        );
    }

    #[test]
    fn regex_substitutes_groups_and_appends_the_rest() {
        let a = [regex("^/apps/([^/]+)", "/srv/$1/app.wsgi")];
        assert_eq!(file(&a, "/apps/blog/post/1").as_deref(), Some("/srv/blog/app.wsgi/post/1"));
        assert_eq!(file(&a, "/apps/"), None);
        let a = [regex("^/(x)?y", "/t/[$1][$0][$9]\\$1")];
        assert_eq!(file(&a, "/y/z").as_deref(), Some("/t/[][/y][]$1/z"));
    }

    #[test]
    fn regex_matching_only_a_slash_keeps_the_whole_uri() {
        let a = [regex("^/", "/srv/site.wsgi")];
        assert_eq!(file(&a, "/a/b").as_deref(), Some("/srv/site.wsgi/a/b"));
    }

    #[test]
    fn unanchored_regex_consumes_up_to_the_end_of_the_match() {
        let a = [regex("\\.wsgi", "/srv/any.wsgi")];
        assert_eq!(file(&a, "/x/y.wsgi/info").as_deref(), Some("/srv/any.wsgi/info"));
    }

    #[test]
    fn uri_bytes_pass_through_unchanged() {
        let t = translate(&[prefix("/a", "/t")], b"/a/\xff").unwrap();
        assert_eq!(t.filename, b"/t/\xff");
        let t = translate(&[regex("^/(.)", "/t/[$1]")], "/é/x".as_bytes()).unwrap();
        assert_eq!(t.filename, b"/t/[\xc3]\xa9/x", "'.' is one byte, as in Apache");
    }

    #[test]
    fn first_match_in_order_wins_and_carries_its_options() {
        let mut first = prefix("/", "/srv/root.wsgi");
        first.options.process_group = Some("root".into());
        let a = [prefix("/api", "/srv/api.wsgi"), first, prefix("/api/v2", "/srv/never.wsgi")];
        let t = translate(&a, b"/api/v2/x").unwrap();
        assert_eq!(t.filename, b"/srv/api.wsgi/v2/x");
        let t = translate(&a, b"/other").unwrap();
        assert_eq!(t.options.process_group.as_deref(), Some("root"));
    }

    #[test]
    fn no_match_gives_none() {
        assert_eq!(file(&[prefix("/a", "/t"), regex("^/b", "/u")], "/c"), None);
        assert_eq!(file(&[], "/c"), None);
    }

    #[test]
    fn preload_only_for_fixed_groups() {
        let mut a = prefix("/", "/srv/site.wsgi");
        assert_eq!(a.preload(), None);
        a.options.process_group = Some("site".into());
        assert_eq!(a.preload(), None, "application group missing");
        a.options.application_group = Some("%{GLOBAL}".into());
        let s = a.preload().unwrap();
        assert_eq!(
            (s.path.as_str(), s.process_group.as_str(), s.application_group.as_str()),
            ("/srv/site.wsgi", "site", "")
        );
        a.options.application_group = Some("%{RESOURCE}".into());
        assert_eq!(a.preload(), None);
        let mut r = regex("^/(a)", "/srv/$1.wsgi");
        r.options = AliasOptions {
            process_group: Some("%{GLOBAL}".into()),
            application_group: Some("%{GLOBAL}".into()),
            ..Default::default()
        };
        assert_eq!(r.preload(), None, "target depends on the match");
    }
}
