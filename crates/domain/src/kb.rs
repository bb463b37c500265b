//! The knowledge base (知识库): FAQ entries — a standard question (标准问), the other ways
//! customers ask it (相似问法) and the answer — and articles, each in one language,
//! drafted, published or archived. The bot answers from published FAQ entries.

use crate::{DomainError, optional_text, required_text};
use serde::{Deserialize, Serialize};

labelled_enum! {
    /// What a knowledge-base entry is.
    KbKind ("kind") {
        Faq = "faq", "FAQ", "常见问题";
        Article = "article", "Article", "文章";
    }
}

labelled_enum! {
    /// Where an entry is in its life: only published entries reach the bot.
    KbStatus ("status") {
        Draft = "draft", "Draft", "草稿";
        Published = "published", "Published", "已发布";
        Archived = "archived", "Archived", "已归档";
    }
}

labelled_enum! {
    /// The language an entry is written in.
    KbLanguage ("language") {
        Zh = "zh", "Chinese", "中文";
        En = "en", "English", "英文";
    }
}

/// Most similar questions one entry may have.
pub const MAX_SIMILAR: usize = 100;

/// The checked text of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbText {
    pub question: String,
    pub similar: Vec<String>,
    pub answer: String,
    pub category: String,
}

/// Checks and tidies an entry's text: question ≤ 500 characters, answer ≤ 20,000,
/// category ≤ 100; similar questions trimmed, empty ones and repeats (of each other or
/// of the question, compared case- and width-insensitively) dropped, at most
/// [`MAX_SIMILAR`], each ≤ 500.
pub fn check_text(
    question: &str,
    similar: &[String],
    answer: &str,
    category: &str,
) -> Result<KbText, DomainError> {
    let question = required_text("question", question, 500)?;
    let answer = required_text("answer", answer, 20_000)?;
    let category = optional_text("category", category, 100)?;
    let mut seen = vec![crate::text::search_key(&question)];
    let mut kept = Vec::new();
    for text in similar {
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        if text.chars().count() > 500 {
            return Err(DomainError::invalid(
                "similar",
                "a similar question is at most 500 characters",
            ));
        }
        let key = crate::text::search_key(text);
        if !seen.contains(&key) {
            seen.push(key);
            kept.push(text.to_string());
        }
    }
    if kept.len() > MAX_SIMILAR {
        return Err(DomainError::invalid(
            "similar",
            "an entry has at most 100 similar questions",
        ));
    }
    Ok(KbText {
        question,
        similar: kept,
        answer,
        category,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_questions_are_tidied() {
        let text = check_text(
            " 怎么退款 ",
            &[
                "退款多久到账".into(),
                "  ".into(),
                "怎么退款".into(),
                "ＲＥＦＵＮＤ".into(),
                "refund".into(),
            ],
            "原路退回",
            "",
        )
        .expect("valid");
        assert_eq!(text.question, "怎么退款");
        assert_eq!(text.similar, vec!["退款多久到账", "ＲＥＦＵＮＤ"]);
    }

    #[test]
    fn required_and_oversized_text_is_refused() {
        assert!(check_text("", &[], "a", "").is_err());
        assert!(check_text("q", &[], " ", "").is_err());
        assert!(check_text("q", &["长".repeat(501)], "a", "").is_err());
        let many: Vec<String> = (0..101).map(|i| format!("q{i}")).collect();
        assert!(check_text("q", &many, "a", "").is_err());
    }
}
