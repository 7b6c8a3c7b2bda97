//! A script line split into words: quoted strings, `key=value` pairs, comments.

#[derive(Debug, Clone)]
pub(super) struct Tok {
    pub(super) text: String,
    pub(super) col: usize,
    pub(super) quoted: bool,
}

/// Splits a line into tokens (double quotes group, `\"` and `\\` escape),
/// dropping a `#` comment. Returns the tokens and the source without comment.
pub(super) fn tokenize(line: &str) -> Result<(Vec<Tok>, String), (usize, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut end = chars.len();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' {
            end = i;
            break;
        }
        let col = i + 1;
        if c == '"' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err((col, "unterminated string: expected a closing '\"'".into()));
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') if matches!(chars.get(i + 1), Some('"') | Some('\\')) => {
                        text.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(ch) => {
                        text.push(*ch);
                        i += 1;
                    }
                }
            }
            toks.push(Tok {
                text,
                col,
                quoted: true,
            });
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '#' {
                i += 1;
            }
            toks.push(Tok {
                text: chars[start..i].iter().collect(),
                col,
                quoted: false,
            });
        }
    }
    let source: String = chars[..end].iter().collect();
    Ok((toks, source.trim().to_string()))
}
