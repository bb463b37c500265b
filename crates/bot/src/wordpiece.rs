//! BERT's uncased WordPiece tokenizer, as the sentence-embedding model was trained with:
//! control characters dropped, every CJK character a word of its own, lower case without
//! accents, punctuation split off, then each word cut into the longest pieces the
//! vocabulary has (`##` marks a piece inside a word); a word that cannot be cut is
//! `[UNK]`.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Longest word WordPiece tries to cut; longer ones are `[UNK]`.
const MAX_WORD_CHARS: usize = 100;

#[derive(Debug, Clone)]
pub struct WordPiece {
    ids: HashMap<String, u32>,
    pub cls: u32,
    pub sep: u32,
    pub unk: u32,
}

impl WordPiece {
    /// From a `vocab.txt`: one piece per line, its id the line number.
    pub fn from_vocab(vocab: &str) -> Result<WordPiece, String> {
        let ids: HashMap<String, u32> = vocab
            .lines()
            .enumerate()
            .map(|(i, piece)| (piece.to_string(), i as u32))
            .collect();
        let special = |name: &str| {
            ids.get(name)
                .copied()
                .ok_or_else(|| format!("the vocabulary has no {name}"))
        };
        Ok(WordPiece {
            cls: special("[CLS]")?,
            sep: special("[SEP]")?,
            unk: special("[UNK]")?,
            ids,
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// `[CLS] pieces… [SEP]`, at most `max_len` ids in all.
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let mut out = vec![self.cls];
        'words: for word in basic_words(text) {
            for id in self.pieces(&word) {
                if out.len() + 1 >= max_len {
                    break 'words;
                }
                out.push(id);
            }
        }
        out.push(self.sep);
        out
    }

    fn pieces(&self, word: &str) -> Vec<u32> {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() > MAX_WORD_CHARS {
            return vec![self.unk];
        }
        let mut out = Vec::new();
        let mut start = 0;
        let mut candidate = String::new();
        while start < chars.len() {
            let mut end = chars.len();
            let mut found = None;
            while start < end {
                candidate.clear();
                if start > 0 {
                    candidate.push_str("##");
                }
                candidate.extend(&chars[start..end]);
                if let Some(&id) = self.ids.get(&candidate) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) => out.push(id),
                None => return vec![self.unk],
            }
            start = end;
        }
        out
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c as u32,
            // General punctuation, CJK symbols and punctuation, full-width forms'
            // punctuation, and the Latin-1 ones BERT counts.
            0x2010..=0x2027 | 0x2030..=0x205E | 0x3001..=0x3003 | 0x3008..=0x3011
            | 0x3014..=0x301F | 0x30FB | 0xFF01..=0xFF0F | 0xFF1A..=0xFF20
            | 0xFF3B..=0xFF40 | 0xFF5B..=0xFF65 | 0xA1 | 0xA7 | 0xAB | 0xB6 | 0xB7
            | 0xBB | 0xBF | 0xFE10..=0xFE19 | 0xFE30..=0xFE4F | 0xFE50..=0xFE6B)
}

/// The basic tokenizer's words: lower-cased, accents stripped, punctuation and CJK
/// characters on their own.
fn basic_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, words: &mut Vec<String>| {
        if !current.is_empty() {
            words.push(std::mem::take(current));
        }
    };
    for c in text.chars() {
        let cp = c as u32;
        if cp == 0 || cp == 0xFFFD || (c.is_control() && !c.is_whitespace()) {
            continue;
        }
        if c.is_whitespace() {
            flush(&mut current, &mut words);
        } else if is_cjk(c) || is_punctuation(c) {
            flush(&mut current, &mut words);
            words.push(c.to_string());
        } else {
            for lower in c.to_lowercase() {
                for d in std::iter::once(lower).nfd() {
                    if is_combining_mark(d) {
                        continue;
                    }
                    // Decomposition can leave punctuation (rare): split it off too.
                    if is_punctuation(d) {
                        flush(&mut current, &mut words);
                        words.push(d.to_string());
                    } else {
                        current.push(d);
                    }
                }
            }
        }
    }
    flush(&mut current, &mut words);
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> WordPiece {
        let pieces = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "how", "do", "i", "top", "up", "my", "card", "?",
            "un", "##aff", "##able", "退", "款", "cafe", ",", "!",
        ];
        WordPiece::from_vocab(&pieces.join("\n")).expect("vocab")
    }

    #[test]
    fn words_are_cut_into_the_longest_pieces() {
        let v = vocab();
        assert_eq!(
            v.encode("How do I top up my card?", 64),
            vec![2, 4, 5, 6, 7, 8, 9, 10, 11, 3]
        );
        assert_eq!(v.encode("unaffable", 64), vec![2, 12, 13, 14, 3]);
        // Accents go, CJK characters stand alone, unknown words are [UNK].
        assert_eq!(v.encode("Café,退款!", 64), vec![2, 17, 18, 15, 16, 19, 3]);
        assert_eq!(v.encode("zzz", 64), vec![2, 1, 3]);
        assert_eq!(v.encode("", 64), vec![2, 3]);
        // Truncation keeps [CLS] … [SEP].
        assert_eq!(v.encode("how do i top up my card", 4), vec![2, 4, 5, 3]);
        let long = "a".repeat(150);
        assert_eq!(v.encode(&long, 64), vec![2, 1, 3]);
        assert_eq!(v.encode("\u{0}\u{7}\u{fffd}", 64), vec![2, 3]);
    }
}
