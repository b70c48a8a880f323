//! Where a config path (`policy.rules[2].tools[0]`) sits in the JSON text it came from, so a
//! semantic problem found after parsing still names its line and column.
//!
//! Runs only on documents the parser already accepted, and only when there is a problem to
//! report: a small forward scan, no allocation beyond the path's segments. Object keys may
//! themselves contain dots (`claims./org/tier`, `upstream.credentials.a.b`), so a key matches
//! when the rest of the path starts with it and then ends, or continues with `.` or `[`; the
//! longest such key wins.

/// 1-based line and column of the value at `path` in `doc`, or of the deepest member or element
/// on the way to it that exists. `None` when the document is not JSON or the path's first step
/// is not found.
pub fn locate(doc: &[u8], path: &str) -> Option<(usize, usize)> {
    let mut s = Scanner { b: doc, i: 0 };
    s.ws();
    let mut found = None;
    let mut rest = path;
    loop {
        let here = s.i;
        if rest.is_empty() {
            return Some(position(doc, here));
        }
        if let Some(after) = rest.strip_prefix('[') {
            let (n, tail) = after.split_once(']')?;
            let n: usize = n.parse().ok()?;
            if !s.enter_element(n)? {
                return found;
            }
            rest = tail.strip_prefix('.').unwrap_or(tail);
        } else {
            match s.enter_member(rest)? {
                Some(len) => rest = rest[len..].strip_prefix('.').unwrap_or(&rest[len..]),
                None => return found,
            }
        }
        found = Some(position(doc, s.i));
    }
}

fn position(doc: &[u8], at: usize) -> (usize, usize) {
    let before = &doc[..at.min(doc.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    // Columns count characters, as serde_json's do.
    let col = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, col)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// At an object: move to the value of the member whose key is the longest prefix of
    /// `rest` followed by the end, `.` or `[`. `Ok(Some(key length))`, `Ok(None)` when no
    /// member fits (or this is not an object); `None` on text that is not JSON.
    fn enter_member(&mut self, rest: &str) -> Option<Option<usize>> {
        if self.peek() != Some(b'{') {
            return Some(None);
        }
        let start = self.i;
        self.i += 1;
        let mut best: Option<(usize, usize)> = None; // (key length, value offset)
        loop {
            self.ws();
            match self.peek()? {
                b'}' => break,
                b',' => {
                    self.i += 1;
                    continue;
                }
                b'"' => {}
                _ => return None,
            }
            let key = self.string()?;
            self.ws();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            self.ws();
            let value_at = self.i;
            let fits =
                rest.starts_with(key.as_str()) && matches!(rest.as_bytes().get(key.len()), None | Some(b'.' | b'['));
            if fits && best.is_none_or(|(len, _)| key.len() > len) {
                best = Some((key.len(), value_at));
            }
            self.skip_value()?;
        }
        match best {
            Some((len, at)) => {
                self.i = at;
                Some(Some(len))
            }
            None => {
                self.i = start;
                Some(None)
            }
        }
    }

    /// At an array: move to element `n`. `Some(false)` when there is no such element.
    fn enter_element(&mut self, n: usize) -> Option<bool> {
        if self.peek() != Some(b'[') {
            return Some(false);
        }
        let start = self.i;
        self.i += 1;
        let mut k = 0;
        loop {
            self.ws();
            match self.peek()? {
                b']' => {
                    self.i = start;
                    return Some(false);
                }
                b',' => {
                    self.i += 1;
                    continue;
                }
                _ => {}
            }
            if k == n {
                return Some(true);
            }
            self.skip_value()?;
            k += 1;
        }
    }

    /// A string at the cursor, unescaped enough to compare keys (escapes are rare in keys; an
    /// escaped key is compared by its decoded text).
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        self.skip_string()?;
        serde_json::from_slice::<String>(&self.b[start..self.i]).ok()
    }

    fn skip_string(&mut self) -> Option<()> {
        self.i += 1; // the opening quote
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => self.i += 2,
                _ => self.i += 1,
            }
        }
    }

    fn skip_value(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.skip_string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.i += 1;
                }
                Some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "{\n  \"server\": \"demo\",\n  \"policy\": {\n    \"rules\": [\n      {\"id\": \"a\", \"tools\": [\"x\", \"y\"]},\n      {\"id\": \"b\",\n       \"tools\": [\"z\"]}\n    ]\n  },\n  \"upstream\": {\"credentials\": {\"a.b\": \"v\", \"a\": \"w\"}}\n}";

    #[test]
    fn a_nested_path_is_found_at_its_value() {
        assert_eq!(locate(DOC.as_bytes(), "server"), Some((2, 13)));
        assert_eq!(locate(DOC.as_bytes(), "policy.rules[0].tools[1]"), Some((5, 34)));
        assert_eq!(locate(DOC.as_bytes(), "policy.rules[1].tools"), Some((7, 17)));
        assert_eq!(locate(DOC.as_bytes(), ""), Some((1, 1)));
    }

    #[test]
    fn keys_with_dots_are_matched_by_the_longest_key_that_fits() {
        assert_eq!(locate(DOC.as_bytes(), "upstream.credentials.a.b"), Some((10, 39)));
        assert_eq!(locate(DOC.as_bytes(), "upstream.credentials.a"), Some((10, 49)));
    }

    #[test]
    fn a_missing_tail_points_at_the_deepest_part_that_exists() {
        assert_eq!(locate(DOC.as_bytes(), "policy.rules[1].nope"), Some((6, 7)));
        assert_eq!(locate(DOC.as_bytes(), "policy.rules[9]"), Some((4, 14)));
        assert_eq!(locate(DOC.as_bytes(), "nope"), None);
        assert_eq!(locate(b"not json", "a"), None);
    }
}
