//! Text for machines: search keys and sort keys that treat Chinese properly.

use crate::contacts::fold_width;

/// The sort key of a name: Chinese characters become their pinyin syllables so that
/// 王 sorts among the W's (as a Chinese reader expects from a 通讯录), Latin text is
/// lower-cased, full-width forms are folded. Characters without a reading stay as they are.
pub fn sort_key(name: &str) -> String {
    use pinyin::ToPinyin;
    let folded = fold_width(name);
    let mut key = String::with_capacity(folded.len() * 2);
    for c in folded.trim().chars() {
        match c.to_pinyin() {
            Some(reading) => {
                key.push_str(reading.plain());
                // A separator after each syllable keeps "xi an" (西安) before "xian" (先).
                key.push(' ');
            }
            None => key.extend(c.to_lowercase()),
        }
    }
    key
}

/// Normalises text for substring search: width-folded and lower-cased. Applied both to
/// what is stored and to what is searched for, so 'ＡＢＣ' finds 'abc'.
pub fn search_key(text: &str) -> String {
    fold_width(text).to_lowercase()
}

/// Whether a character is a Chinese character (CJK unified ideographs and extensions).
pub fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2EBEF | 0x30000..=0x3134F)
}

/// The language a text is mostly written in: `zh` when Chinese characters are at least a
/// fifth of its letters, `en` otherwise (also for text without letters).
pub fn language_of(text: &str) -> &'static str {
    let (mut han, mut letters) = (0usize, 0usize);
    for c in text.chars() {
        if is_han(c) {
            han += 1;
            letters += 1;
        } else if c.is_alphabetic() {
            letters += 1;
        }
    }
    if letters > 0 && han * 5 >= letters {
        "zh"
    } else {
        "en"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_names_sort_by_pinyin() {
        let mut names = vec!["王芳", "Zhou Lin", "李娜", "Alice", "赵强", "陈明"];
        names.sort_by_key(|n| sort_key(n));
        assert_eq!(
            names,
            vec!["Alice", "陈明", "李娜", "王芳", "赵强", "Zhou Lin"]
        );
    }

    #[test]
    fn search_keys_fold_width_and_case() {
        assert_eq!(search_key("ＡＢＣ公司"), "abc公司");
    }
}
