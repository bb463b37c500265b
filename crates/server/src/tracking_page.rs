//! The customer's tracking page (进度查询页): a small server-rendered page, readable on
//! a phone, with no script and nothing loaded from elsewhere. Every text from the
//! database is HTML-escaped.

use kefu_store::tracking::{Bilingual, TrackedCase};

/// Whether a public page is shown in English: `?lang=` first, then the browser's
/// `Accept-Language`; Chinese by default.
pub fn wants_english(lang: Option<&str>, headers: &axum::http::HeaderMap) -> bool {
    match lang {
        Some(lang) => lang.starts_with("en"),
        None => headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("en")),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn word(b: &Bilingual, english: bool) -> String {
    escape(if english { &b.en } else { &b.zh })
}

/// Local time for China by default: the page has no script to learn the reader's zone.
fn when(at: kefu_domain::Timestamp, english: bool) -> String {
    let zone = if english { "UTC" } else { "Asia/Shanghai" };
    jiff::Timestamp::from_millisecond(at.0)
        .ok()
        .and_then(|ts| {
            jiff::tz::TimeZone::get(zone)
                .ok()
                .map(|tz| ts.to_zoned(tz).strftime("%Y-%m-%d %H:%M").to_string())
        })
        .map(|text| if english { format!("{text} UTC") } else { text })
        .unwrap_or_else(|| at.to_string())
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1f2937;line-height:1.6}h1{font-size:1.4rem}.status{display:inline-block;padding:.2rem .6rem;border-radius:1rem;background:#e0f2fe;color:#075985;font-weight:600}ol{list-style:none;padding:0}li{border-left:3px solid #cbd5e1;padding:.3rem .8rem;margin:.6rem 0}li.reply{border-color:#0ea5e9}li.customer{border-color:#a3a3a3}time{color:#6b7280;font-size:.85rem;display:block}.lang{float:right;font-size:.9rem}";

fn page(title: &str, body: &str, english: bool) -> String {
    let lang = if english { "en" } else { "zh-CN" };
    format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"robots\" content=\"noindex\"><title>{title}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )
}

pub fn render(case: &TrackedCase, english: bool) -> String {
    let t = |en: &str, zh: &str| {
        if english {
            en.to_string()
        } else {
            zh.to_string()
        }
    };
    let mut body = String::new();
    body.push_str(&format!(
        "<a class=\"lang\" href=\"?lang={}\">{}</a>",
        if english { "zh-CN" } else { "en" },
        if english { "中文" } else { "English" }
    ));
    body.push_str(&format!(
        "<h1>{} #{}: {}</h1>",
        t("Case", "工单"),
        case.number,
        escape(&case.subject)
    ));
    body.push_str(&format!(
        "<p>{}: <span class=\"status\">{}</span></p>",
        t("Status", "状态"),
        word(&case.status, english)
    ));
    if let Some(stage) = &case.complaint_stage {
        body.push_str(&format!(
            "<p>{}: <strong>{}</strong></p>",
            t("Complaint stage", "投诉处理进度"),
            word(stage, english)
        ));
    }
    body.push_str(&format!(
        "<p>{} {} · {} {}</p>",
        t("Opened", "创建于"),
        when(case.created_at, english),
        t("updated", "更新于"),
        when(case.updated_at, english)
    ));
    if !case.promises.is_empty() {
        body.push_str(&format!(
            "<h2>{}</h2><ul>",
            t("Our promises to you", "我们的承诺")
        ));
        for promise in &case.promises {
            body.push_str(&format!(
                "<li>{} — {} {} ({})</li>",
                escape(&promise.description),
                t("by", "截止"),
                when(promise.due_at, english),
                word(&promise.status, english)
            ));
        }
        body.push_str("</ul>");
    }
    body.push_str(&format!("<h2>{}</h2><ol>", t("History", "处理记录")));
    for event in &case.events {
        let (class, label) = match event.kind.as_str() {
            "message_from_customer" => ("customer", t("Your message", "您的留言")),
            "reply" => ("reply", t("Our reply", "客服回复")),
            "status" => ("", t("Status changed to", "状态变更为")),
            _ => ("", t("Complaint handling moved to", "投诉处理进入")),
        };
        let text = match (&event.body, &event.to) {
            (Some(text), _) => escape(text),
            (None, Some(to)) => word(to, english),
            (None, None) => String::new(),
        };
        body.push_str(&format!(
            "<li class=\"{class}\"><time>{}</time><strong>{label}</strong> {text}</li>",
            when(event.at, english)
        ));
    }
    body.push_str("</ol>");
    page(
        &format!("{} #{}", t("Case", "工单"), case.number),
        &body,
        english,
    )
}

pub fn not_found(english: bool) -> String {
    if english {
        page(
            "Link not valid",
            "<h1>This link is not valid</h1><p>It may have been replaced by a newer one. Please contact customer service for a new link.</p>",
            true,
        )
    } else {
        page(
            "链接无效",
            "<h1>此链接无效</h1><p>链接可能已被新链接取代，请联系客服获取新的查询链接。</p>",
            false,
        )
    }
}

/// The CSAT survey page: the question, five choices and a reason; or the thanks.
pub fn survey(
    view: &kefu_store::satisfaction::SurveyView,
    english: bool,
    error: Option<&str>,
) -> String {
    let t = |en: &str, zh: &str| {
        if english {
            en.to_string()
        } else {
            zh.to_string()
        }
    };
    let mut body = String::new();
    body.push_str(&format!(
        "<a class=\"lang\" href=\"?lang={}\">{}</a>",
        if english { "zh-CN" } else { "en" },
        if english { "中文" } else { "English" }
    ));
    body.push_str(&format!(
        "<h1>{} #{}: {}</h1>",
        t("Case", "工单"),
        view.case_number,
        escape(&view.subject)
    ));
    if view.answered {
        body.push_str(&format!(
            "<p>{} ({}/5)</p>",
            t("Thank you for your feedback.", "感谢您的评价。"),
            view.score.unwrap_or_default()
        ));
    } else if view.expired {
        body.push_str(&format!(
            "<p>{}</p>",
            t("This survey has closed.", "本次调查已结束。")
        ));
    } else {
        if let Some(error) = error {
            body.push_str(&format!(
                "<p role=\"alert\"><strong>{}</strong></p>",
                escape(error)
            ));
        }
        body.push_str(&format!(
            "<form method=\"post\"><p>{}</p>",
            t(
                "How satisfied are you with how we handled this?",
                "您对本次服务满意吗？"
            )
        ));
        let labels = if english {
            [
                "Very dissatisfied",
                "Dissatisfied",
                "Neutral",
                "Satisfied",
                "Very satisfied",
            ]
        } else {
            ["非常不满意", "不满意", "一般", "满意", "非常满意"]
        };
        for (i, label) in labels.iter().enumerate() {
            body.push_str(&format!(
                "<label style=\"display:block\"><input type=\"radio\" name=\"score\" value=\"{}\" required> {} {label}</label>",
                i + 1,
                i + 1
            ));
        }
        body.push_str(&format!(
            "<p><label>{}<br><textarea name=\"reason\" rows=\"4\" cols=\"40\" maxlength=\"2000\"></textarea></label></p><button type=\"submit\">{}</button></form>",
            t("Why? (optional)", "原因（选填）"),
            t("Send", "提交")
        ));
    }
    page(&t("Satisfaction survey", "满意度调查"), &body, english)
}
