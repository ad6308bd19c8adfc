//! Byte offsets to the line and column a person sees, and problems located that way.

/// One problem in one module, located in that module's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters (Unicode scalar values) of the line.
    pub column: u32,
    /// Plain-English description.
    pub message: String,
}

/// Line starts of one text, to turn byte offsets into positions.
///
/// A line ends at `\n`, `\r\n` or a lone `\r` (what editors count).
pub(crate) struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    /// Indexes `text`.
    pub fn new(text: &'a str) -> Lines<'a> {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        for (i, &byte) in bytes.iter().enumerate() {
            let ends_line = byte == b'\n' || (byte == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
            if ends_line {
                starts.push(i + 1);
            }
        }
        Lines { text, starts }
    }

    /// The 1-based line and character column of byte `offset`. An offset past the end
    /// or inside a character is clamped back to the nearest character start.
    pub fn position(&self, offset: usize) -> (u32, u32) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts.get(line.saturating_sub(1)).copied().unwrap_or(0);
        let column = self.text.get(start..offset).map_or(0, |s| s.chars().count());
        (saturate(line), saturate(column + 1))
    }

    /// A [`Problem`] at byte `offset`.
    pub fn problem(&self, offset: usize, message: impl Into<String>) -> Problem {
        let (line, column) = self.position(offset);
        Problem { line, column, message: message.into() }
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        let text = "ab\néx\r\ny\rz";
        let lines = Lines::new(text);
        for (offset, expected) in [
            (0, (1, 1)),
            (1, (1, 2)),
            (2, (1, 3)),
            (3, (2, 1)),
            (4, (2, 1)), // inside "é": clamped to its start
            (5, (2, 2)),
            (8, (3, 1)),
            (10, (4, 1)),
            (11, (4, 2)),
            (999, (4, 2)),
        ] {
            assert_eq!(lines.position(offset), expected, "offset {offset}");
        }
    }
}
