//! Text normalisation shared by everything that matches text: the FAQ index, the
//! classifiers and the rules. Applied to stored entries and to every message alike, so
//! that 'ＲＥＦＵＮＤ', 'Refund' and 'refund' match, and 退貨 finds an entry written 退货.

use std::collections::HashMap;
use std::sync::OnceLock;

use kefu_domain::contacts::fold_width;

/// Longest message the bot reads, in characters. Longer input is cut here (at a
/// character boundary) so that an enormous paste costs no more than a long message.
pub const MAX_CHARS: usize = 2_000;

static T2S: OnceLock<HashMap<char, char>> = OnceLock::new();

fn t2s_table() -> &'static HashMap<char, char> {
    T2S.get_or_init(|| {
        include_str!("../data/t2s.txt")
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let mut chars = line.chars();
                Some((chars.next()?, chars.next()?))
            })
            .collect()
    })
}

/// Traditional Chinese characters to their Simplified forms, one character at a time
/// (OpenCC's character table). Other text is unchanged.
pub fn to_simplified(text: &str) -> String {
    let table = t2s_table();
    text.chars().map(|c| *table.get(&c).unwrap_or(&c)).collect()
}

/// The form in which text is matched: full-width folded to half-width, lower-cased,
/// Traditional → Simplified, control characters and unpaired replacement characters
/// dropped, runs of white space collapsed to one space, trimmed, at most [`MAX_CHARS`].
pub fn normalize(text: &str) -> String {
    let table = t2s_table();
    let folded = fold_width(text);
    let mut out = String::with_capacity(folded.len().min(MAX_CHARS * 4));
    let mut pending_space = false;
    let mut count = 0;
    for c in folded.chars() {
        if count >= MAX_CHARS {
            break;
        }
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if c.is_control() || c == '\u{FFFD}' || is_invisible(c) {
            continue;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        let c = *table.get(&c).unwrap_or(&c);
        for lower in c.to_lowercase() {
            out.push(lower);
        }
        count += 1;
    }
    out
}

/// Zero-width and formatting characters that copy-paste leaves behind.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    )
}

pub use kefu_domain::text::{is_han, language_of};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_case_and_script_are_folded() {
        assert_eq!(normalize("ＲＥＦＵＮＤ　退貨"), "refund 退货");
        assert_eq!(normalize("  我的訂單\t\n在哪裡？ "), "我的订单 在哪里?");
        assert_eq!(to_simplified("發票與帳號"), "发票与帐号");
    }

    #[test]
    fn invisible_and_control_characters_are_dropped() {
        assert_eq!(normalize("ref\u{200B}und\u{0007}\u{FFFD}"), "refund");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize(" \n\t "), "");
    }

    #[test]
    fn enormous_input_is_cut_at_a_character_boundary() {
        let long = "退".repeat(MAX_CHARS * 3);
        assert_eq!(normalize(&long).chars().count(), MAX_CHARS);
    }

    #[test]
    fn language_follows_the_script() {
        assert_eq!(language_of("我要退款 refund"), "zh");
        assert_eq!(language_of("Where is my order?"), "en");
        assert_eq!(language_of("12345"), "en");
        assert_eq!(language_of("order 订单"), "zh");
    }
}
