//! Touchpoints (接触点): every interaction with a customer, on one timeline, with its
//! channel, who started it, the interaction type and the kind of content exchanged.

labelled_enum! {
    /// The channel of an interaction (沟通渠道).
    Channel ("channel") {
        Email = "email", "Email", "电子邮件";
        Phone = "phone", "Phone", "电话";
        LiveChat = "live_chat", "Live chat", "在线客服";
        Im = "im", "Instant messaging", "即时通讯";
        Sms = "sms", "SMS", "短信";
        Web = "web", "Website / form", "网站";
        Api = "api", "API / system", "系统接口";
        FaceToFace = "face_to_face", "Face to face", "面对面";
        Letter = "letter", "Letter", "信函";
        /// Events kefu records itself (a lifecycle change, a transfer).
        System = "system", "kefu", "系统";
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
        CustomerInitiated = "customer_initiated", "Started by the customer", "客户发起";
        CompanyInitiated = "company_initiated", "Started by the company", "企业发起";
    }
}

labelled_enum! {
    /// The textbook's interaction types (互动类型).
    InteractionType ("interaction_type") {
        FaceToFace = "face_to_face", "Face to face", "面对面互动";
        IndirectPersonal = "indirect_personal", "Indirect personal", "间接人际互动";
        NonPersonal = "non_personal", "Non-personal", "非人际互动";
    }
}

labelled_enum! {
    /// What the interaction carried (互动内容).
    ContentType ("content_type") {
        Information = "information", "Information", "信息";
        Emotion = "emotion", "Emotion", "情感";
        Policy = "policy", "Philosophy / policy", "理念与政策";
        Opinion = "opinion", "Opinions / suggestions", "意见与建议";
    }
}

labelled_enum! {
    /// What happened at a touchpoint.
    TimelineKind ("kind") {
        Message = "message", "Message", "消息";
        CaseCreated = "case_created", "Case created", "新建工单";
        CaseStatus = "case_status", "Case status changed", "工单状态变更";
        CaseUpdated = "case_updated", "Case updated", "工单更新";
        CaseTransfer = "case_transfer", "Case transferred", "工单转接";
        CaseMerged = "case_merged", "Case merged", "工单合并";
        Call = "call", "Call", "通话";
        Visit = "visit", "Visit", "拜访";
        Letter = "letter", "Letter", "信函";
        SurveyAnswer = "survey_answer", "Survey answer", "问卷回复";
        OrderEvent = "order_event", "Order event", "订单事件";
        Transaction = "transaction", "Transaction", "交易";
        Lifecycle = "lifecycle", "Lifecycle change", "生命周期变更";
        FollowUp = "follow_up", "Win-back attempt", "挽回跟进";
        Note = "note", "Note", "备注";
        /// A step of a complaint through its flow or escalation.
        Complaint = "complaint", "Complaint handling", "投诉处理";
        /// A promise made to the customer, kept or broken.
        Promise = "promise", "Promise", "承诺";
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
