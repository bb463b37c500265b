//! Words from normalised text: jieba for Chinese runs, Snowball-stemmed words for Latin
//! runs, numbers as they are, and the two marks that carry meaning (`!`, `?`).
//!
//! The jieba dictionary and the stemmer are loaded once per process and shared.

use std::sync::OnceLock;

use jieba_rs::Jieba;
use rust_stemmers::{Algorithm, Stemmer};

use crate::normalize::is_han;

struct Tools {
    jieba: Jieba,
    stemmer: Stemmer,
}

static TOOLS: OnceLock<Tools> = OnceLock::new();

fn tools() -> &'static Tools {
    TOOLS.get_or_init(|| Tools {
        jieba: Jieba::new(),
        stemmer: Stemmer::create(Algorithm::English),
    })
}

/// Loads the segmentation dictionary now rather than on the first message.
pub fn warm_up() {
    tools();
}

/// What a token is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A Chinese word from jieba (one or more characters).
    Han,
    /// A Latin-script word, stemmed.
    Word,
    Number,
    /// `!` or `?`.
    Mark,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub kind: Kind,
}

/// Tokens of text already passed through [`crate::normalize::normalize`].
pub fn tokens(normalized: &str) -> Vec<Token> {
    let tools = tools();
    let mut out = Vec::new();
    let mut rest = normalized;
    while let Some(first) = rest.chars().next() {
        let run_len = run_length(rest, first);
        let (run, tail) = rest.split_at(run_len);
        rest = tail;
        if is_han(first) {
            for word in tools.jieba.cut(run, true) {
                out.push(Token {
                    text: word.word.to_string(),
                    kind: Kind::Han,
                });
            }
        } else if first.is_alphabetic() {
            let word = run.trim_end_matches('\'');
            // "don't" → "dont": contractions are one word, as people type them both ways.
            let joined: String = word.chars().filter(|c| *c != '\'').collect();
            out.push(Token {
                text: tools.stemmer.stem(&joined).into_owned(),
                kind: Kind::Word,
            });
        } else if first.is_ascii_digit() {
            out.push(Token {
                text: run.to_string(),
                kind: Kind::Number,
            });
        } else if matches!(first, '!' | '?') {
            out.push(Token {
                text: first.to_string(),
                kind: Kind::Mark,
            });
        }
    }
    out
}

/// Length in bytes of the run of same-class characters that starts `text`.
fn run_length(text: &str, first: char) -> usize {
    let class = |c: char| -> u8 {
        if is_han(c) {
            1
        } else if c.is_alphabetic() {
            2
        } else if c.is_ascii_digit() {
            3
        } else {
            4
        }
    };
    let first_class = class(first);
    if first_class == 4 {
        return first.len_utf8();
    }
    let mut len = 0;
    let mut previous = first;
    for c in text.chars() {
        let same = class(c) == first_class
            // an apostrophe inside a Latin word belongs to it: don't, customer's
            || (first_class == 2 && c == '\'' && previous.is_alphabetic());
        if !same {
            break;
        }
        len += c.len_utf8();
        previous = c;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    fn texts(raw: &str) -> Vec<String> {
        tokens(&normalize(raw))
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn chinese_is_segmented_and_english_stemmed() {
        assert_eq!(texts("我要退款"), vec!["我要", "退款"]);
        assert_eq!(
            texts("I can't find my Refunds!!"),
            vec!["i", "cant", "find", "my", "refund", "!", "!"]
        );
        assert_eq!(
            texts("订单12345还没到 order"),
            vec!["订单", "12345", "还", "没到", "order"]
        );
    }

    #[test]
    fn anything_else_is_skipped_without_panicking() {
        assert!(texts("").is_empty());
        assert!(texts("🙂🙂 --- ###").is_empty());
        let binary = String::from_utf8_lossy(&[0xff, 0x00, 0xfe, 0x41, 0x80]).into_owned();
        assert_eq!(texts(&binary), vec!["a"]);
    }
}
