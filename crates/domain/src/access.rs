//! Who may do what: roles for people, permissions for routes, scopes for API tokens.
//!
//! A request is allowed when the caller's role grants the permission and, for an API
//! token, the token's scopes include it too. Scopes can only narrow a role, never widen it.

use crate::Labelled;

labelled_enum! {
    Role ("role") {
        Admin = "admin", "Administrator", "管理员";
        Supervisor = "supervisor", "Supervisor", "主管";
        Agent = "agent", "Agent", "客服专员";
        Readonly = "readonly", "Read-only", "只读";
    }
}

labelled_enum! {
    /// A permission names a resource and an action. Its name is also the API token scope.
    Permission ("scopes") {
        CustomersRead = "customers:read", "Read customers", "查看客户";
        CustomersWrite = "customers:write", "Create and edit customers", "编辑客户";
        CustomersDelete = "customers:delete", "Delete customers", "删除客户";
        CasesRead = "cases:read", "Read cases", "查看工单";
        CasesWrite = "cases:write", "Create and work cases", "处理工单";
        CasesMerge = "cases:merge", "Merge cases", "合并工单";
        TimelineRead = "timeline:read", "Read timelines", "查看接触记录";
        TimelineWrite = "timeline:write", "Record touchpoints", "记录接触";
        AuditRead = "audit:read", "Read the audit log", "查看审计日志";
        TeamsRead = "teams:read", "Read teams and agents", "查看团队";
        TeamsManage = "teams:manage", "Manage teams", "管理团队";
        UsersManage = "users:manage", "Manage users", "管理用户";
        SettingsManage = "settings:manage", "Manage settings and custom fields", "管理设置";
        TokensManage = "tokens:manage", "Manage one's own API tokens", "管理 API 令牌";
        ComplaintsReview = "complaints:review", "Decide appeals on complaints", "审核投诉申诉";
        NotificationsOwn = "notifications:own", "Read and dismiss one's own notifications", "查看本人通知";
        ReportsRead = "reports:read", "Read reports", "查看报表";
        KbRead = "kb:read", "Read the knowledge base", "查看知识库";
        KbWrite = "kb:write", "Edit the knowledge base", "编辑知识库";
        BotUse = "bot:use", "Talk to the bot (for chat channels)", "使用智能客服";
    }
}

impl Role {
    pub fn grants(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Supervisor => !matches!(permission, UsersManage | SettingsManage),
            Role::Agent => matches!(
                permission,
                CustomersRead
                    | CustomersWrite
                    | CasesRead
                    | CasesWrite
                    | TimelineRead
                    | TimelineWrite
                    | TeamsRead
                    | TokensManage
                    | NotificationsOwn
                    | KbRead
                    | BotUse
            ),
            Role::Readonly => matches!(
                permission,
                CustomersRead | CasesRead | TimelineRead | TeamsRead | NotificationsOwn | KbRead
            ),
        }
    }

    /// Everything the role grants, as scope names.
    pub fn permissions(self) -> Vec<Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(|p| self.grants(*p))
            .collect()
    }
}

/// Parses a space- or comma-separated list of scopes; `*` means every permission.
pub fn parse_scopes(text: &str) -> Result<Vec<Permission>, crate::DomainError> {
    let mut scopes = Vec::new();
    for word in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if word == "*" {
            return Ok(Permission::ALL.to_vec());
        }
        let permission = Permission::parse(word)?;
        if !scopes.contains(&permission) {
            scopes.push(permission);
        }
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_nest() {
        for permission in Permission::ALL {
            if Role::Readonly.grants(*permission) {
                assert!(Role::Agent.grants(*permission), "{permission}");
            }
            if Role::Agent.grants(*permission) {
                assert!(Role::Supervisor.grants(*permission), "{permission}");
            }
            assert!(Role::Admin.grants(*permission));
        }
        assert!(!Role::Readonly.grants(Permission::CasesWrite));
        assert!(!Role::Agent.grants(Permission::AuditRead));
    }

    #[test]
    fn scopes_parse() {
        assert_eq!(
            parse_scopes("cases:read, customers:read cases:read").expect("valid"),
            vec![Permission::CasesRead, Permission::CustomersRead]
        );
        assert_eq!(
            parse_scopes("*").expect("valid").len(),
            Permission::ALL.len()
        );
        assert!(parse_scopes("cases:destroy").is_err());
    }
}
