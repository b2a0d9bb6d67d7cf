//! A dotenv reader that finds one entry without touching the process environment.
//!
//! Written here rather than taken from a crate so that a syntax error is reported by line number
//! alone: the usual parsers put the offending line, which may hold a key, into their error.

/// Why a dotenv file could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line of the problem.
    pub line: usize,
    /// What is wrong there, without the line's content.
    pub reason: &'static str,
}

/// The value of the last `key` entry in `text`, or `None` when there is none. The whole file is
/// parsed, so a syntax error anywhere is reported even when `key` comes before it.
pub fn find(text: &str, key: &str) -> Result<Option<String>, SyntaxError> {
    let mut found = None;
    let lines: Vec<&str> = text.split('\n').collect();
    let mut index = 0;
    while index < lines.len() {
        let line_number = index + 1;
        let line = lines[index].trim_end_matches('\r').trim_start();
        index += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let Some((name, rest)) = line.split_once('=') else {
            return Err(SyntaxError {
                line: line_number,
                reason: "expected NAME=VALUE",
            });
        };
        let name = name.trim();
        let valid_name = name
            .chars()
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid_name {
            return Err(SyntaxError {
                line: line_number,
                reason: "the name before = is not a variable name",
            });
        }
        let rest = rest.trim_start_matches([' ', '\t']);
        let value = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                // A quoted value may continue over following lines until its closing quote.
                let mut body = rest[1..].to_owned();
                let value = loop {
                    if let Some((value, after)) = split_at_closing_quote(&body, quote) {
                        let after = after.trim();
                        if !(after.is_empty() || after.starts_with('#')) {
                            return Err(SyntaxError {
                                line: line_number,
                                reason: "unexpected text after the closing quote",
                            });
                        }
                        break value;
                    }
                    let Some(next) = lines.get(index) else {
                        return Err(SyntaxError {
                            line: line_number,
                            reason: "a quote is never closed",
                        });
                    };
                    body.push('\n');
                    body.push_str(next.trim_end_matches('\r'));
                    index += 1;
                };
                if quote == '"' {
                    unescape(&value)
                } else {
                    value
                }
            }
            _ => {
                let value = match rest.find(" #").or_else(|| rest.find("\t#")) {
                    Some(comment) => &rest[..comment],
                    None => rest,
                };
                value.trim_end().to_owned()
            }
        };
        if name == key {
            found = Some(value);
        }
    }
    Ok(found)
}

/// Splits `body` at the first unescaped `quote`: the text before it and the text after it.
fn split_at_closing_quote(body: &str, quote: char) -> Option<(String, &str)> {
    let mut escaped = false;
    for (offset, c) in body.char_indices() {
        if quote == '"' && c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if c == quote && !escaped {
            return Some((body[..offset].to_owned(), &body[offset + 1..]));
        }
        escaped = false;
    }
    None
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_usual_forms() {
        let text = "# comment\n\nexport A=1\nB = two words # trailing\nC=\"quoted \\\"x\\\" \\n\"\nD='single #'\nA=last\n";
        assert_eq!(find(text, "A").unwrap().as_deref(), Some("last"));
        assert_eq!(find(text, "B").unwrap().as_deref(), Some("two words"));
        assert_eq!(find(text, "C").unwrap().as_deref(), Some("quoted \"x\" \n"));
        assert_eq!(find(text, "D").unwrap().as_deref(), Some("single #"));
        assert_eq!(find(text, "E").unwrap(), None);
    }

    #[test]
    fn multi_line_quoted_values() {
        let text = "PEM=\"-----BEGIN-----\nabc\n-----END-----\"\nNEXT=1\r\n";
        assert_eq!(
            find(text, "PEM").unwrap().as_deref(),
            Some("-----BEGIN-----\nabc\n-----END-----")
        );
        assert_eq!(find(text, "NEXT").unwrap().as_deref(), Some("1"));
    }

    #[test]
    fn syntax_errors_give_the_line_and_never_the_content() {
        let error = find("A=1\nsk-proj-SECRET\n", "A").unwrap_err();
        assert_eq!(
            error,
            SyntaxError {
                line: 2,
                reason: "expected NAME=VALUE"
            }
        );
        let error = find("A=\"open\nB=2\n", "A").unwrap_err();
        assert_eq!(error.line, 1);
        assert_eq!(error.reason, "a quote is never closed");
        let error = find("A=\"x\" y\n", "A").unwrap_err();
        assert_eq!(error.reason, "unexpected text after the closing quote");
        let error = find("1A=x\n", "A").unwrap_err();
        assert_eq!(error.line, 1);
    }
}
