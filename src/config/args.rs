//! Splitting a directive's raw argument string into words.
//!
//! Every directive reaches us as Apache's RAW_ARGS: the text after the directive name, with
//! line continuations already joined. This module turns that text into words using the same
//! rules as Apache's `ap_getword_conf`, so a quoted path with spaces means the same thing here as
//! it does to every other module. It knows nothing about what the words mean.

/// Whitespace as `apr_isspace` sees it (C `isspace` in the "C" locale).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Index of the first non-space byte at or after `from`.
fn skip_space(bytes: &[u8], mut from: usize) -> usize {
    while from < bytes.len() && is_space(bytes[from]) {
        from += 1;
    }
    from
}

/// Copies `text`, turning `\\` into `\` and, inside quotes, `\<quote>` into `<quote>`.
/// Any other backslash is kept literally, as Apache does.
fn unescape(text: &str, quote: Option<u8>) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let next = bytes.get(i + 1).copied();
        if bytes[i] == b'\\' && (next == Some(b'\\') || (quote.is_some() && next == quote)) {
            i += 1;
        }
        out.push(bytes[i]);
        i += 1;
    }
    // Only ASCII bytes were dropped, so the UTF-8 of `text` is intact.
    String::from_utf8(out).expect("removing ASCII backslashes keeps UTF-8 valid")
}

/// Reads one word starting at byte `pos` (leading whitespace allowed) and returns it with the
/// position of the next word. Mirrors `ap_getword_conf`: a word starting with `"` or `'` runs to
/// the matching unescaped quote (or the end of the text if it is never closed); any other word
/// runs to the next whitespace.
fn next_word(raw: &str, pos: usize) -> (String, usize) {
    let bytes = raw.as_bytes();
    let start = skip_space(bytes, pos);
    if start == bytes.len() {
        return (String::new(), start);
    }
    let quote = bytes[start];
    let (word, mut end) = if quote == b'"' || quote == b'\'' {
        let mut end = start + 1;
        while end < bytes.len() && bytes[end] != quote {
            let escaped = bytes[end] == b'\\'
                && matches!(bytes.get(end + 1), Some(&n) if n == quote || n == b'\\');
            end += if escaped { 2 } else { 1 };
        }
        let word = unescape(&raw[start + 1..end], Some(quote));
        if end < bytes.len() {
            end += 1; // step over the closing quote
        }
        (word, end)
    } else {
        let mut end = start;
        while end < bytes.len() && !is_space(bytes[end]) {
            end += 1;
        }
        (unescape(&raw[start..end], None), end)
    };
    end = skip_space(bytes, end);
    (word, end)
}

/// Splits `raw` into words with Apache's configuration quoting rules (`ap_getword_conf`).
///
/// `"a b"` and `'a b'` are one word; inside quotes a backslash escapes the quote character and
/// another backslash. An explicitly quoted empty string (`""`) is kept as an empty word.
pub fn split(raw: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut pos = skip_space(raw.as_bytes(), 0);
    while pos < raw.len() {
        let (word, next) = next_word(raw, pos);
        words.push(word);
        pos = next;
    }
    words
}

/// Splits `raw` into `positional` plain words followed by `name=value` options.
///
/// After the positional words, mod_wsgi reads each option as a name running up to `=` and then
/// a value read like a word, so `home='/srv/my app'` is one option whose value has a space (and
/// the quotes are removed). [`split`] would cut that in two. Each option comes back as
/// `"name=value"`; text that is not of that form comes back as a bare word so the caller can
/// report it as an invalid option.
pub fn split_options(raw: &str, positional: usize) -> Vec<String> {
    let bytes = raw.as_bytes();
    let mut words = Vec::new();
    let mut pos = skip_space(bytes, 0);
    while pos < bytes.len() && words.len() < positional {
        let (word, next) = next_word(raw, pos);
        words.push(word);
        pos = next;
    }
    while pos < bytes.len() {
        let mut name_end = pos;
        while name_end < bytes.len() && bytes[name_end] != b'=' && !is_space(bytes[name_end]) {
            name_end += 1;
        }
        if bytes.get(name_end) == Some(&b'=') {
            let (value, next) = next_word(raw, name_end + 1);
            words.push(format!("{}={}", &raw[pos..name_end], value));
            pos = next;
        } else {
            words.push(raw[pos..name_end].to_string());
            pos = skip_space(bytes, name_end);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_split_on_any_whitespace() {
        assert_eq!(split("  a\tb \r\n c  "), ["a", "b", "c"]);
        assert!(split("").is_empty());
        assert!(split(" \t ").is_empty());
    }

    #[test]
    fn double_and_single_quotes_group_words() {
        assert_eq!(split(r#""/srv/my app" 'x y' z"#), ["/srv/my app", "x y", "z"]);
    }

    #[test]
    fn quoted_empty_string_is_a_word() {
        assert_eq!(split(r#""" x"#), ["", "x"]);
    }

    #[test]
    fn backslash_escapes_quote_and_backslash_inside_quotes() {
        assert_eq!(split(r#""a \"b\" c""#), [r#"a "b" c"#]);
        assert_eq!(split(r#"'it\'s'"#), ["it's"]);
        assert_eq!(split(r#""a\\b""#), [r"a\b"]);
        // The other quote character and other letters keep their backslash.
        assert_eq!(split(r#""a\'b\n""#), [r"a\'b\n"]);
    }

    #[test]
    fn unquoted_words_only_collapse_double_backslashes() {
        assert_eq!(split(r"C:\\dir a\b"), [r"C:\dir", r"a\b"]);
        assert_eq!(split(r#"a\"b"#), [r#"a\"b"#]);
    }

    #[test]
    fn quote_inside_a_word_is_literal() {
        assert_eq!(split(r#"a"b c"d"#), [r#"a"b"#, r#"c"d"#]);
    }

    #[test]
    fn closing_quote_ends_the_word_even_without_space() {
        assert_eq!(split(r#""ab"cd"#), ["ab", "cd"]);
    }

    #[test]
    fn unterminated_quote_runs_to_the_end() {
        assert_eq!(split(r#"x "a b"#), ["x", "a b"]);
    }

    #[test]
    fn non_ascii_text_survives() {
        assert_eq!(split("/srv/café 'ünï côdé'"), ["/srv/café", "ünï côdé"]);
    }

    #[test]
    fn options_keep_quoted_values_whole() {
        let words = split_options(r#"grp home='/srv/my app' display-name="%{GROUP}" threads=5"#, 1);
        assert_eq!(words, ["grp", "home=/srv/my app", "display-name=%{GROUP}", "threads=5"]);
    }

    #[test]
    fn options_after_two_positional_words() {
        let words = split_options(r#""/a b" /x.wsgi process-group=p"#, 2);
        assert_eq!(words, ["/a b", "/x.wsgi", "process-group=p"]);
    }

    #[test]
    fn option_value_may_be_empty_or_contain_equals() {
        assert_eq!(split_options("x b=c=d", 1), ["x", "b=c=d"]);
        assert_eq!(split_options("x a=''", 1), ["x", "a="]);
    }

    #[test]
    fn whitespace_after_equals_is_skipped_like_mod_wsgi() {
        // mod_wsgi reads the value with ap_getword_conf, which skips leading blanks.
        assert_eq!(split_options("x a= b", 1), ["x", "a=b"]);
    }

    #[test]
    fn text_that_is_not_an_option_is_returned_bare() {
        assert_eq!(split_options("x oops a=1", 1), ["x", "oops", "a=1"]);
        assert_eq!(split_options("x =v", 1), ["x", "=v"]);
    }
}
