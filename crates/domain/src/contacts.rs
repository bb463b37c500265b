//! Contacts (联系方式): one customer is reached on many channels, and each address
//! belongs to one customer only, compared in a normalised form.

use crate::{DomainError, Labelled};

labelled_enum! {
    ContactChannel ("channel") {
        Email = "email", "Email", "电子邮件";
        Phone = "phone", "Phone", "电话";
        Wechat = "wechat", "WeChat", "微信";
        Qq = "qq", "QQ", "QQ";
        Whatsapp = "whatsapp", "WhatsApp", "WhatsApp";
        Telegram = "telegram", "Telegram", "Telegram";
        Line = "line", "LINE", "LINE";
        Weibo = "weibo", "Weibo", "微博";
        Other = "other", "Other", "其他";
    }
}

/// Folds full-width ASCII (ＡＢＣ１２３＠) and the ideographic space to their half-width
/// forms: customers type addresses with Chinese input methods switched on.
pub fn fold_width(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .collect()
}

/// A contact address in the form it is stored and compared in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalisedContact {
    pub channel: ContactChannel,
    pub value: String,
}

impl NormalisedContact {
    /// Normalises and checks an address for its channel.
    ///
    /// - email: width-folded, trimmed, lower-cased; one `@`, a dotted domain, no spaces.
    /// - phone: width-folded; spaces, dashes, dots and brackets removed; `00` becomes `+`;
    ///   7–15 digits (E.164 allows 15). No country is guessed for national numbers.
    /// - IM handles: width-folded, trimmed, a leading `@` dropped, lower-cased.
    pub fn parse(channel: ContactChannel, raw: &str) -> Result<Self, DomainError> {
        let folded = fold_width(raw);
        let trimmed = folded.trim();
        if trimmed.chars().any(char::is_control) {
            return Err(DomainError::invalid("value", "contains control characters"));
        }
        if trimmed.is_empty() {
            return Err(DomainError::invalid(
                "value",
                format!("{} contact must not be empty", channel.as_str()),
            ));
        }
        let value = match channel {
            ContactChannel::Email => normalise_email(trimmed)?,
            ContactChannel::Phone => normalise_phone(trimmed)?,
            _ => {
                let handle = trimmed.trim_start_matches('@').to_lowercase();
                if handle.is_empty()
                    || handle.chars().count() > 200
                    || handle.chars().any(char::is_whitespace)
                {
                    return Err(DomainError::invalid(
                        "value",
                        "handle must be 1–200 characters without spaces",
                    ));
                }
                handle
            }
        };
        Ok(NormalisedContact { channel, value })
    }
}

fn normalise_email(text: &str) -> Result<String, DomainError> {
    let lower = text.to_lowercase();
    let bad = || DomainError::invalid("value", format!("`{text}` is not an email address"));
    let (local, domain) = lower.split_once('@').ok_or_else(bad)?;
    let valid = !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 253
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !lower
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == ';');
    if valid { Ok(lower) } else { Err(bad()) }
}

fn normalise_phone(text: &str) -> Result<String, DomainError> {
    let mut out = String::with_capacity(text.len());
    for (index, c) in text.chars().enumerate() {
        match c {
            '+' if index == 0 => out.push('+'),
            '0'..='9' => out.push(c),
            ' ' | '-' | '.' | '(' | ')' | '/' => {}
            _ => {
                return Err(DomainError::invalid(
                    "value",
                    format!("`{text}` is not a phone number: unexpected `{c}`"),
                ));
            }
        }
    }
    if let Some(rest) = out.strip_prefix("00") {
        out = format!("+{rest}");
    }
    let digits = out.trim_start_matches('+').len();
    if !(7..=15).contains(&digits) {
        return Err(DomainError::invalid(
            "value",
            format!("`{text}` has {digits} digits; a phone number has 7 to 15"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(channel: ContactChannel, raw: &str, expected: Result<&str, ()>) {
        let got = NormalisedContact::parse(channel, raw)
            .map(|c| c.value)
            .map_err(|_| ());
        assert_eq!(
            got.as_deref(),
            expected.as_deref().map_err(|_| &()),
            "{channel}: {raw:?}"
        );
    }

    #[test]
    fn emails() {
        check(
            ContactChannel::Email,
            "  Li.Na@Example.COM ",
            Ok("li.na@example.com"),
        );
        check(
            ContactChannel::Email,
            "ｌｉｎａ＠ｅｘａｍｐｌｅ．ｃｏｍ",
            Ok("lina@example.com"),
        );
        check(ContactChannel::Email, "no-at-sign.example.com", Err(()));
        check(ContactChannel::Email, "a@b", Err(()));
        check(ContactChannel::Email, "a b@example.com", Err(()));
        check(ContactChannel::Email, "a@@example.com", Err(()));
    }

    #[test]
    fn phones() {
        check(
            ContactChannel::Phone,
            "+86 138-0013-8000",
            Ok("+8613800138000"),
        );
        check(
            ContactChannel::Phone,
            "0086 (138) 0013 8000",
            Ok("+8613800138000"),
        );
        check(
            ContactChannel::Phone,
            "１３８００１３８０００",
            Ok("13800138000"),
        );
        check(ContactChannel::Phone, "138001", Err(()));
        check(ContactChannel::Phone, "call me", Err(()));
        check(ContactChannel::Phone, "12+34567890", Err(()));
    }

    #[test]
    fn handles() {
        check(
            ContactChannel::Wechat,
            " @WangXiaoMing ",
            Ok("wangxiaoming"),
        );
        check(ContactChannel::Telegram, "two words", Err(()));
        check(ContactChannel::Qq, "   ", Err(()));
    }
}
