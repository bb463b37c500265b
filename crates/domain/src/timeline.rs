//! Touchpoints (接觸點): every interaction with a customer, on one timeline, with its
//! channel, who started it, the interaction type and the kind of content exchanged.

labelled_enum! {
    /// The channel of an interaction (溝通渠道).
    Channel ("channel") {
        Email = "email", "Email", "電子郵件";
        Phone = "phone", "Phone", "電話";
        LiveChat = "live_chat", "Live chat", "在線客服";
        Im = "im", "Instant messaging", "即時通訊";
        Sms = "sms", "SMS", "短信";
        Web = "web", "Website / form", "網站";
        Api = "api", "API / system", "系統接口";
        FaceToFace = "face_to_face", "Face to face", "面對面";
        Letter = "letter", "Letter", "信函";
        /// Events kefu records itself (a lifecycle change, a transfer).
        System = "system", "kefu", "系統";
    }
}

impl Channel {
    /// The interaction type the textbook assigns to the channel: people in the same room,
    /// people through a medium, or no person at all on the customer's side of it.
    pub fn interaction_type(self) -> InteractionType {
        match self {
            Channel::FaceToFace => InteractionType::FaceToFace,
            Channel::Phone | Channel::LiveChat | Channel::Im => InteractionType::IndirectPersonal,
            Channel::Email
            | Channel::Sms
            | Channel::Web
            | Channel::Api
            | Channel::Letter
            | Channel::System => InteractionType::NonPersonal,
        }
    }
}

labelled_enum! {
    /// Who started the interaction.
    Direction ("direction") {
        CustomerInitiated = "customer_initiated", "Started by the customer", "客戶發起";
        CompanyInitiated = "company_initiated", "Started by the company", "企業發起";
    }
}

labelled_enum! {
    /// The textbook's interaction types (互動類型).
    InteractionType ("interaction_type") {
        FaceToFace = "face_to_face", "Face to face", "面對面互動";
        IndirectPersonal = "indirect_personal", "Indirect personal", "間接人際互動";
        NonPersonal = "non_personal", "Non-personal", "非人際互動";
    }
}

labelled_enum! {
    /// What the interaction carried (互動內容).
    ContentType ("content_type") {
        Information = "information", "Information", "信息";
        Emotion = "emotion", "Emotion", "情感";
        Policy = "policy", "Philosophy / policy", "理念與政策";
        Opinion = "opinion", "Opinions / suggestions", "意見與建議";
    }
}

labelled_enum! {
    /// What happened at a touchpoint.
    TimelineKind ("kind") {
        Message = "message", "Message", "消息";
        CaseCreated = "case_created", "Case created", "新建工單";
        CaseStatus = "case_status", "Case status changed", "工單狀態變更";
        CaseUpdated = "case_updated", "Case updated", "工單更新";
        CaseTransfer = "case_transfer", "Case transferred", "工單轉接";
        CaseMerged = "case_merged", "Case merged", "工單合併";
        Call = "call", "Call", "通話";
        Visit = "visit", "Visit", "拜訪";
        Letter = "letter", "Letter", "信函";
        SurveyAnswer = "survey_answer", "Survey answer", "問卷回覆";
        OrderEvent = "order_event", "Order event", "訂單事件";
        Transaction = "transaction", "Transaction", "交易";
        Lifecycle = "lifecycle", "Lifecycle change", "生命週期變更";
        FollowUp = "follow_up", "Win-back attempt", "挽回跟進";
        Note = "note", "Note", "備註";
    }
}

impl TimelineKind {
    /// The kinds a person may record by hand; the others are written by kefu itself as
    /// things happen, so that the timeline cannot claim an event that did not occur.
    pub fn recordable_by_hand(self) -> bool {
        matches!(
            self,
            TimelineKind::Call
                | TimelineKind::Visit
                | TimelineKind::Letter
                | TimelineKind::Note
                | TimelineKind::OrderEvent
                | TimelineKind::SurveyAnswer
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Labelled;

    #[test]
    fn channels_follow_the_textbook_types() {
        assert_eq!(
            Channel::FaceToFace.interaction_type(),
            InteractionType::FaceToFace
        );
        assert_eq!(
            Channel::Phone.interaction_type(),
            InteractionType::IndirectPersonal
        );
        assert_eq!(
            Channel::Letter.interaction_type(),
            InteractionType::NonPersonal
        );
        assert_eq!(
            Channel::Email.interaction_type(),
            InteractionType::NonPersonal
        );
        assert!(Channel::ALL.iter().all(|c| !c.label_zh().is_empty()));
    }
}
