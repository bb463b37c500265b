//! Cases (工单): every request a customer brings, of the kinds the textbooks name, with
//! their service classification, status machine and priority.

use crate::DomainError;

labelled_enum! {
    /// What the customer came for.
    CaseKind ("kind") {
        Consultation = "consultation", "Consultation", "咨询";
        TechnicalSupport = "technical_support", "Technical support", "技术支持";
        Order = "order", "Order", "订单";
        Complaint = "complaint", "Complaint", "投诉";
        AfterSale = "after_sale", "After-sale service", "售后服务";
        Suggestion = "suggestion", "Suggestion", "建议";
    }
}

impl CaseKind {
    /// The service stage a case of this kind usually belongs to, used when the creator
    /// does not say.
    pub fn default_stage(self) -> ServiceStage {
        match self {
            CaseKind::Consultation => ServiceStage::PreSale,
            CaseKind::Order => ServiceStage::InSale,
            CaseKind::TechnicalSupport
            | CaseKind::Complaint
            | CaseKind::AfterSale
            | CaseKind::Suggestion => ServiceStage::AfterSale,
        }
    }

    /// Complaints start at high priority: a dissatisfied customer who speaks up is the
    /// five per cent the complaint pyramid warns about.
    pub fn default_priority(self) -> Priority {
        match self {
            CaseKind::Complaint => Priority::High,
            _ => Priority::Normal,
        }
    }

    pub fn default_technical(self) -> bool {
        matches!(self, CaseKind::TechnicalSupport)
    }
}

labelled_enum! {
    /// Where a case stands.
    CaseStatus ("status") {
        New = "new", "New", "新建";
        Open = "open", "Open", "处理中";
        /// Waiting for the customer's answer.
        Pending = "pending", "Waiting on customer", "待客户回复";
        /// Waiting for a third party or another department.
        OnHold = "on_hold", "On hold", "挂起";
        Solved = "solved", "Solved", "已解决";
        Closed = "closed", "Closed", "已关闭";
        /// Merged into another case; read-only from then on.
        Merged = "merged", "Merged", "已合并";
    }
}

impl CaseStatus {
    /// The statuses reachable by a status change. `merged` is reached only by merging,
    /// and `closed` and `merged` are final: a new request after closing is a new case.
    pub fn allowed_next(self) -> &'static [CaseStatus] {
        use CaseStatus::*;
        match self {
            New => &[Open, Pending, OnHold, Solved, Closed],
            Open => &[Pending, OnHold, Solved, Closed],
            Pending => &[Open, OnHold, Solved, Closed],
            OnHold => &[Open, Pending, Solved, Closed],
            Solved => &[Open, Closed],
            Closed | Merged => &[],
        }
    }

    pub fn transition(self, to: CaseStatus) -> Result<CaseStatus, DomainError> {
        if self.allowed_next().contains(&to) {
            Ok(to)
        } else {
            Err(DomainError::transition_refused(
                "status",
                self,
                to,
                self.allowed_next(),
            ))
        }
    }

    /// Whether the case still needs work.
    pub fn is_open(self) -> bool {
        !matches!(
            self,
            CaseStatus::Solved | CaseStatus::Closed | CaseStatus::Merged
        )
    }

    /// Whether the case accepts messages, transfers and edits.
    pub fn is_writable(self) -> bool {
        !matches!(self, CaseStatus::Closed | CaseStatus::Merged)
    }
}

labelled_enum! {
    Priority ("priority") {
        Low = "low", "Low", "低";
        Normal = "normal", "Normal", "普通";
        High = "high", "High", "高";
        Urgent = "urgent", "Urgent", "紧急";
    }
}

labelled_enum! {
    /// Service classification by time (按时间): before, during or after the sale.
    ServiceStage ("service_stage") {
        PreSale = "pre_sale", "Pre-sale", "售前服务";
        InSale = "in_sale", "In-sale", "售中服务";
        AfterSale = "after_sale", "After-sale", "售后服务";
    }
}

labelled_enum! {
    /// Free or paid service (按收费).
    Charging ("charging") {
        Free = "free", "Free", "免费服务";
        Paid = "paid", "Paid", "收费服务";
    }
}

labelled_enum! {
    /// Where the service happens (按地点).
    ServiceMode ("service_mode") {
        FixedPoint = "fixed_point", "On-site at a fixed point", "定点服务";
        Itinerant = "itinerant", "Itinerant", "巡回服务";
    }
}

labelled_enum! {
    /// One-off or recurring service (按次数).
    Recurrence ("recurrence") {
        OneOff = "one_off", "One-off", "一次性服务";
        Recurring = "recurring", "Recurring", "经常性服务";
    }
}

labelled_enum! {
    /// A message on a case: from the customer, to the customer, or between colleagues.
    MessageKind ("kind") {
        Inbound = "inbound", "From the customer", "客户来信";
        Outbound = "outbound", "To the customer", "回复客户";
        InternalNote = "internal_note", "Internal note", "内部备注";
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Labelled;

    #[test]
    fn final_statuses_have_no_way_out() {
        for to in CaseStatus::ALL {
            assert!(CaseStatus::Closed.transition(*to).is_err());
            assert!(CaseStatus::Merged.transition(*to).is_err());
        }
        for from in CaseStatus::ALL {
            assert!(
                from.transition(CaseStatus::Merged).is_err(),
                "merged is reached only by merging"
            );
            assert!(
                from.transition(*from).is_err(),
                "{from} -> itself is not a change"
            );
        }
    }

    #[test]
    fn a_solved_case_can_be_reopened() {
        assert_eq!(
            CaseStatus::Solved.transition(CaseStatus::Open),
            Ok(CaseStatus::Open)
        );
        let error = CaseStatus::Solved
            .transition(CaseStatus::Pending)
            .expect_err("not allowed");
        assert!(
            matches!(error, DomainError::TransitionNotAllowed { ref allowed, .. } if allowed == &["open", "closed"])
        );
    }

    #[test]
    fn kinds_drive_defaults() {
        assert_eq!(CaseKind::Complaint.default_priority(), Priority::High);
        assert_eq!(
            CaseKind::Consultation.default_stage(),
            ServiceStage::PreSale
        );
        assert_eq!(CaseKind::Order.default_stage(), ServiceStage::InSale);
        assert!(CaseKind::TechnicalSupport.default_technical());
    }
}
