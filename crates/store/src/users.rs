//! People who use kefu, their teams, login sessions and API tokens.
//!
//! Passwords are hashed with Argon2id; session and API tokens are random and only their
//! SHA-256 is stored, so a copy of the database lets nobody log in.

use crate::audit;
use crate::customers::parse_label;
use crate::page::{Cursor, CursorKey, Page, PageRequest};
use crate::sql::{Builder, Row, q};
use crate::{
    Actor, Result, Store, StoreError, new_public_id, parse_public_id, random_token, token_hash,
};
use kefu_domain::access::{Permission, Role, parse_scopes};
use kefu_domain::contacts::{ContactChannel, NormalisedContact};
use kefu_domain::{DomainError, Labelled, Timestamp, nullable, optional_text, required_text};
use serde::{Deserialize, Serialize};

/// Sessions last two weeks from login.
pub const SESSION_TTL_MS: i64 = 14 * 24 * 3600 * 1000;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    #[serde(skip)]
    pub key: i64,
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub team_id: Option<String>,
    pub active: bool,
    /// `zh-CN` or `en`.
    pub locale: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    /// At least 8 characters; without one the user cannot log in to the UI (API
    /// tokens still work).
    pub password: Option<String>,
    pub team_id: Option<String>,
    pub locale: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub password: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub team_id: Option<Option<String>>,
    pub active: Option<bool>,
    pub locale: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Team {
    #[serde(skip)]
    pub key: i64,
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    pub name: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamPatch {
    pub name: Option<String>,
    pub description: Option<String>,
}

/// An API token as listed: the secret itself is shown once, at creation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub scopes: Vec<Permission>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: ApiToken,
    /// The secret for `Authorization: Bearer`. It is not stored and cannot be shown again.
    pub secret: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// Space-separated scopes (`cases:read customers:write`) or `*`; the role's
    /// permissions unless said. A token never exceeds its user's role.
    pub scopes: Option<String>,
    pub expires_at: Option<Timestamp>,
}

/// Who is calling, as resolved from a session cookie or an API token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    /// `None` for a login session (the role decides); the token's scopes otherwise.
    pub scopes: Option<Vec<Permission>>,
    /// The CSRF token of a login session.
    pub csrf_token: Option<String>,
}

impl Principal {
    pub fn can(&self, permission: Permission) -> bool {
        self.user.active
            && self.user.role.grants(permission)
            && self.scopes.as_ref().is_none_or(|s| s.contains(&permission))
    }

    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.user.key),
            label: self.user.email.clone(),
            authority: Some(self.authority()),
        }
    }

    /// The role this caller decides with: a supervisor's or admin's token without
    /// `complaints:review` decides reviews and offers as an agent at most.
    pub fn authority(&self) -> Role {
        let role = self.user.role;
        if matches!(role, Role::Supervisor | Role::Admin) && !self.can(Permission::ComplaintsReview)
        {
            Role::Agent
        } else {
            role
        }
    }
}

const USER_SELECT: &str = "SELECT u.id, u.public_id, u.email, u.name, u.role, t.public_id AS team_public_id, u.active, u.locale, u.created_at, u.updated_at, u.version FROM users u LEFT JOIN teams t ON t.id = u.team_id";

fn user_from_row(row: &Row) -> Result<User> {
    Ok(User {
        key: row.get("id")?,
        id: row.get("public_id")?,
        email: row.get("email")?,
        name: row.get("name")?,
        role: parse_label(row, "role")?,
        team_id: row.get("team_public_id")?,
        active: row.get("active")?,
        locale: row.get("locale")?,
        created_at: Timestamp(row.get("created_at")?),
        updated_at: Timestamp(row.get("updated_at")?),
        version: row.get("version")?,
    })
}

fn team_from_row(row: &Row) -> Result<Team> {
    Ok(Team {
        key: row.get("id")?,
        id: row.get("public_id")?,
        name: row.get("name")?,
        description: row.get("description")?,
        created_at: Timestamp(row.get("created_at")?),
        updated_at: Timestamp(row.get("updated_at")?),
        version: row.get("version")?,
    })
}

fn token_from_row(row: &Row) -> Result<ApiToken> {
    let scopes: String = row.get("scopes")?;
    Ok(ApiToken {
        id: row.get("public_id")?,
        name: row.get("name")?,
        user_id: row.get("user_public_id")?,
        scopes: parse_scopes(&scopes)
            .map_err(|e| StoreError::Database(format!("stored scopes: {e}")))?,
        created_at: Timestamp(row.get("created_at")?),
        last_used_at: row.get::<Option<i64>>("last_used_at")?.map(Timestamp),
        expires_at: row.get::<Option<i64>>("expires_at")?.map(Timestamp),
        revoked_at: row.get::<Option<i64>>("revoked_at")?.map(Timestamp),
    })
}

fn check_locale(locale: &str) -> Result<String> {
    match locale {
        "zh-CN" | "en" => Ok(locale.to_string()),
        other => {
            Err(DomainError::invalid("locale", format!("`{other}` is not one of zh-CN, en")).into())
        }
    }
}

fn check_password(password: &str) -> Result<()> {
    let length = password.chars().count();
    if !(8..=1024).contains(&length) {
        return Err(DomainError::invalid("password", "must be 8 to 1024 characters long").into());
    }
    Ok(())
}

/// Argon2id with the crate's recommended parameters (19 MiB, 2 passes).
pub fn hash_password(password: &str) -> Result<String> {
    use argon2::password_hash::PasswordHasher as _;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| StoreError::Database(format!("hashing failed: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordVerifier as _, phc::PasswordHash};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

fn user_json(user: &User) -> serde_json::Value {
    serde_json::to_value(user).unwrap_or_default()
}

impl Store {
    async fn team_key(&self, conn: &mut crate::sql::Conn, public_id: &str) -> Result<i64> {
        let id = parse_public_id("team", public_id).map_err(|_| {
            StoreError::Invalid(DomainError::invalid(
                "team_id",
                format!("no team has id `{public_id}`"),
            ))
        })?;
        conn.fetch_optional(q("SELECT id FROM teams WHERE public_id = $1").bind(id))
            .await?
            .ok_or_else(|| {
                StoreError::Invalid(DomainError::invalid(
                    "team_id",
                    format!("no team has id `{public_id}`"),
                ))
            })?
            .get("id")
    }

    pub async fn create_user(&self, actor: &Actor, input: NewUser) -> Result<User> {
        let now = self.now_ms();
        let email = NormalisedContact::parse(ContactChannel::Email, &input.email)
            .map_err(|e| DomainError::invalid("email", e.to_string()))?
            .value;
        let name = match &input.name {
            Some(name) => required_text("name", name, 200)?,
            None => email.split('@').next().unwrap_or_default().to_string(),
        };
        let locale = check_locale(input.locale.as_deref().unwrap_or("zh-CN"))?;
        let password_hash = match &input.password {
            Some(password) => {
                check_password(password)?;
                Some(hash_password(password)?)
            }
            None => None,
        };
        let mut conn = self.write().await?;
        let team = match &input.team_id {
            Some(id) => Some(self.team_key(&mut conn, id).await?),
            None => None,
        };
        if conn
            .fetch_optional(q("SELECT id FROM users WHERE email = $1").bind(email.as_str()))
            .await?
            .is_some()
        {
            return Err(StoreError::conflict(
                "duplicate",
                Some("email"),
                format!("a user with email {email} already exists"),
            ));
        }
        let public_id = new_public_id();
        conn.execute(
            q("INSERT INTO users (public_id, email, name, role, team_id, password_hash, active, locale, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7, $8, $8, 1)")
                .bind(public_id.as_str())
                .bind(email.as_str())
                .bind(name)
                .bind(input.role.as_str())
                .bind(team)
                .bind(password_hash)
                .bind(locale)
                .bind(now),
        )
        .await?;
        let user = user_from_row(&conn.fetch_one(q(concat!("SELECT u.id, u.public_id, u.email, u.name, u.role, t.public_id AS team_public_id, u.active, u.locale, u.created_at, u.updated_at, u.version FROM users u LEFT JOIN teams t ON t.id = u.team_id", " WHERE u.public_id = $1")).bind(public_id.as_str())).await?)?;
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "user",
            &public_id,
            None,
            Some(&user_json(&user)),
        )
        .await?;
        conn.commit().await?;
        Ok(user)
    }

    pub async fn user(&self, public_id: &str) -> Result<User> {
        let id = parse_public_id("user", public_id)?;
        let row = self
            .read()
            .fetch_optional(q(concat!("SELECT u.id, u.public_id, u.email, u.name, u.role, t.public_id AS team_public_id, u.active, u.locale, u.created_at, u.updated_at, u.version FROM users u LEFT JOIN teams t ON t.id = u.team_id", " WHERE u.public_id = $1")).bind(id))
            .await?
            .ok_or_else(|| StoreError::not_found("user", public_id))?;
        user_from_row(&row)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<User> {
        let email = NormalisedContact::parse(ContactChannel::Email, email)
            .map_err(|_| StoreError::not_found("user", email))?
            .value;
        let row = self
            .read()
            .fetch_optional(q(concat!("SELECT u.id, u.public_id, u.email, u.name, u.role, t.public_id AS team_public_id, u.active, u.locale, u.created_at, u.updated_at, u.version FROM users u LEFT JOIN teams t ON t.id = u.team_id", " WHERE u.email = $1")).bind(email.as_str()))
            .await?
            .ok_or_else(|| StoreError::not_found("user", email))?;
        user_from_row(&row)
    }

    pub async fn users(&self, page: &PageRequest) -> Result<Page<User>> {
        let limit = page.limit()?;
        let mut builder = Builder::new(USER_SELECT);
        builder.push(" WHERE 1 = 1");
        if let Some(cursor) = &page.cursor {
            builder.and("u.id > $?", Cursor::decode(cursor, "id")?.id);
        }
        builder.push(&format!(" ORDER BY u.id LIMIT {}", limit + 1));
        let rows = self.read().fetch_all(builder.query()).await?;
        let users = rows.iter().map(user_from_row).collect::<Result<Vec<_>>>()?;
        Ok(crate::audit::finish_page(users, limit, |u| Cursor {
            k: CursorKey::Int(u.key),
            id: u.key,
            s: "id".into(),
        }))
    }

    pub async fn update_user(
        &self,
        actor: &Actor,
        public_id: &str,
        patch: UserPatch,
        expected_version: Option<i64>,
    ) -> Result<User> {
        let now = self.now_ms();
        let before = self.user(public_id).await?;
        if let Some(expected) = expected_version.filter(|v| *v != before.version) {
            return Err(StoreError::VersionMismatch {
                entity: "user",
                expected,
                current: before.version,
            });
        }
        let name = match &patch.name {
            Some(name) => required_text("name", name, 200)?,
            None => before.name.clone(),
        };
        let locale = check_locale(patch.locale.as_deref().unwrap_or(&before.locale))?;
        let password_hash = match &patch.password {
            Some(password) => {
                check_password(password)?;
                Some(hash_password(password)?)
            }
            None => None,
        };
        let mut conn = self.write().await?;
        let team = match &patch.team_id {
            Some(Some(id)) => Some(self.team_key(&mut conn, id).await?),
            Some(None) => None,
            None => match &before.team_id {
                Some(id) => Some(self.team_key(&mut conn, id).await?),
                None => None,
            },
        };
        let changed = conn
            .execute(
                q("UPDATE users SET name = $1, role = $2, team_id = $3, active = $4, locale = $5, password_hash = COALESCE($6, password_hash), updated_at = $7, version = version + 1 WHERE id = $8 AND version = $9")
                    .bind(name)
                    .bind(patch.role.unwrap_or(before.role).as_str())
                    .bind(team)
                    .bind(patch.active.unwrap_or(before.active))
                    .bind(locale)
                    .bind(password_hash.clone())
                    .bind(now)
                    .bind(before.key)
                    .bind(before.version),
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::VersionMismatch {
                entity: "user",
                expected: before.version,
                current: before.version + 1,
            });
        }
        if password_hash.is_some() || patch.active == Some(false) {
            // A new password or a deactivation ends every session of the user.
            conn.execute(q("DELETE FROM sessions WHERE user_id = $1").bind(before.key))
                .await?;
        }
        let row = conn.fetch_one(q(concat!("SELECT u.id, u.public_id, u.email, u.name, u.role, t.public_id AS team_public_id, u.active, u.locale, u.created_at, u.updated_at, u.version FROM users u LEFT JOIN teams t ON t.id = u.team_id", " WHERE u.id = $1")).bind(before.key)).await?;
        let after = user_from_row(&row)?;
        audit::record(
            &mut conn,
            actor,
            now,
            "update",
            "user",
            public_id,
            Some(&user_json(&before)),
            Some(&user_json(&after)),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    /// Checks a password and opens a session. The answer does not say whether the email
    /// exists.
    pub async fn login(&self, email: &str, password: &str) -> Result<(String, Principal)> {
        let now = self.now_ms();
        let denied =
            || StoreError::conflict("invalid_credentials", None, "email or password is wrong");
        let normalised = NormalisedContact::parse(ContactChannel::Email, email)
            .map_err(|_| denied())?
            .value;
        let row = self
            .read()
            .fetch_optional(
                q("SELECT id, password_hash, active FROM users WHERE email = $1")
                    .bind(normalised.as_str()),
            )
            .await?;
        let Some(row) = row else {
            // Spend the same time as a real check, so timing does not reveal accounts.
            let _ = verify_password(
                password,
                "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0000000000000000000000000000000000000000000",
            );
            return Err(denied());
        };
        let hash: Option<String> = row.get("password_hash")?;
        let active: bool = row.get("active")?;
        if !active || !hash.is_some_and(|h| verify_password(password, &h)) {
            return Err(denied());
        }
        let user_key: i64 = row.get("id")?;
        let token = random_token(32);
        let csrf = random_token(24);
        let mut conn = self.write().await?;
        conn.execute(q("DELETE FROM sessions WHERE expires_at < $1").bind(now))
            .await?;
        conn.execute(
            q("INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(token_hash(&token))
                .bind(user_key)
                .bind(csrf.as_str())
                .bind(now)
                .bind(now + SESSION_TTL_MS),
        )
        .await?;
        let user_row = conn.fetch_one(q(concat!("SELECT u.id, u.public_id, u.email, u.name, u.role, t.public_id AS team_public_id, u.active, u.locale, u.created_at, u.updated_at, u.version FROM users u LEFT JOIN teams t ON t.id = u.team_id", " WHERE u.id = $1")).bind(user_key)).await?;
        let user = user_from_row(&user_row)?;
        audit::record(
            &mut conn,
            &Actor {
                user_id: Some(user.key),
                label: user.email.clone(),
                authority: None,
            },
            now,
            "login",
            "user",
            &user.id,
            None,
            None,
        )
        .await?;
        conn.commit().await?;
        Ok((
            token,
            Principal {
                user,
                scopes: None,
                csrf_token: Some(csrf),
            },
        ))
    }

    pub async fn logout(&self, session_token: &str) -> Result<()> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let user = conn
            .fetch_optional(
                q("SELECT u.id, u.public_id, u.email FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1")
                    .bind(token_hash(session_token)),
            )
            .await?;
        conn.execute(
            q("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash(session_token)),
        )
        .await?;
        // Logging out of a session that is already gone changes nothing: no record.
        if let Some(user) = user {
            let public_id: String = user.get("public_id")?;
            audit::record(
                &mut conn,
                &Actor {
                    user_id: Some(user.get("id")?),
                    label: user.get("email")?,
                    authority: None,
                },
                now,
                "logout",
                "user",
                &public_id,
                None,
                None,
            )
            .await?;
        }
        conn.commit().await
    }

    /// Resolves a session cookie.
    pub async fn principal_for_session(&self, session_token: &str) -> Result<Option<Principal>> {
        let row = self
            .read()
            .fetch_optional(
                q("SELECT u.id, u.public_id, u.email, u.name, u.role, t.public_id AS team_public_id, u.active, u.locale, u.created_at, u.updated_at, u.version, s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id LEFT JOIN teams t ON t.id = u.team_id WHERE s.token_hash = $1 AND s.expires_at > $2")
                    .bind(token_hash(session_token))
                    .bind(self.now_ms()),
            )
            .await?;
        row.map(|row| {
            Ok(Principal {
                user: user_from_row(&row)?,
                scopes: None,
                csrf_token: Some(row.get("csrf_token")?),
            })
        })
        .transpose()
    }

    /// Resolves an API token.
    pub async fn principal_for_token(&self, secret: &str) -> Result<Option<Principal>> {
        let now = self.now_ms();
        let row = self
            .read()
            .fetch_optional(
                q("SELECT u.id, u.public_id, u.email, u.name, u.role, t.public_id AS team_public_id, u.active, u.locale, u.created_at, u.updated_at, u.version, k.scopes, k.id AS token_id, k.last_used_at FROM api_tokens k JOIN users u ON u.id = k.user_id LEFT JOIN teams t ON t.id = u.team_id WHERE k.token_hash = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $2)")
                    .bind(token_hash(secret))
                    .bind(now),
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let scopes: String = row.get("scopes")?;
        let last_used: Option<i64> = row.get("last_used_at")?;
        // Record use at most once a minute, so reads do not turn into writes.
        if last_used.is_none_or(|at| now - at > 60_000) {
            let mut conn = self.write().await?;
            conn.execute(
                q("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(row.get::<i64>("token_id")?),
            )
            .await?;
            conn.commit().await?;
        }
        Ok(Some(Principal {
            user: user_from_row(&row)?,
            scopes: Some(
                parse_scopes(&scopes)
                    .map_err(|e| StoreError::Database(format!("stored scopes: {e}")))?,
            ),
            csrf_token: None,
        }))
    }

    /// Creates an API token for a user. Scopes beyond the user's role are refused.
    pub async fn create_token(
        &self,
        actor: &Actor,
        user_public_id: &str,
        input: NewToken,
    ) -> Result<CreatedToken> {
        let now = self.now_ms();
        let user = self.user(user_public_id).await?;
        let name = required_text("name", &input.name, 100)?;
        let scopes = match &input.scopes {
            Some(text) => parse_scopes(text)?,
            None => user.role.permissions(),
        };
        if let Some(beyond) = scopes.iter().find(|s| !user.role.grants(**s)) {
            return Err(DomainError::invalid(
                "scopes",
                format!("`{beyond}` is beyond the {} role", user.role),
            )
            .into());
        }
        if scopes.is_empty() {
            return Err(DomainError::invalid("scopes", "a token needs at least one scope").into());
        }
        if input.expires_at.is_some_and(|t| t.0 <= now) {
            return Err(DomainError::invalid("expires_at", "is in the past").into());
        }
        let secret = format!("kefu_{}", random_token(32));
        let public_id = new_public_id();
        let scope_text = scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let mut conn = self.write().await?;
        conn.execute(
            q("INSERT INTO api_tokens (public_id, user_id, name, token_hash, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(public_id.as_str())
                .bind(user.key)
                .bind(name.as_str())
                .bind(token_hash(&secret))
                .bind(scope_text.as_str())
                .bind(now)
                .bind(input.expires_at.map(|t| t.0)),
        )
        .await?;
        let token = ApiToken {
            id: public_id.clone(),
            name,
            user_id: user.id.clone(),
            scopes,
            created_at: Timestamp(now),
            last_used_at: None,
            expires_at: input.expires_at,
            revoked_at: None,
        };
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "api_token",
            &public_id,
            None,
            serde_json::to_value(&token).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(CreatedToken { token, secret })
    }

    /// The tokens of one user.
    pub async fn tokens(&self, user_public_id: &str) -> Result<Vec<ApiToken>> {
        let user_public_id = parse_public_id("user", user_public_id)?;
        let user_public_id = user_public_id.as_str();
        let rows = self
            .read()
            .fetch_all(q("SELECT k.public_id, k.name, u.public_id AS user_public_id, k.scopes, k.created_at, k.last_used_at, k.expires_at, k.revoked_at FROM api_tokens k JOIN users u ON u.id = k.user_id WHERE u.public_id = $1 ORDER BY k.id").bind(user_public_id))
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Revokes a token. `owner` limits it to that user's tokens (agents revoke their own).
    pub async fn revoke_token(
        &self,
        actor: &Actor,
        token_public_id: &str,
        owner: Option<&str>,
    ) -> Result<ApiToken> {
        let token_public_id = parse_public_id("token", token_public_id)?;
        let token_public_id = token_public_id.as_str();
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let row = conn
            .fetch_optional(q("SELECT k.public_id, k.name, u.public_id AS user_public_id, k.scopes, k.created_at, k.last_used_at, k.expires_at, k.revoked_at FROM api_tokens k JOIN users u ON u.id = k.user_id WHERE k.public_id = $1").bind(token_public_id))
            .await?
            .ok_or_else(|| StoreError::not_found("token", token_public_id))?;
        let before = token_from_row(&row)?;
        if owner.is_some_and(|o| o != before.user_id) {
            return Err(StoreError::not_found("token", token_public_id));
        }
        conn.execute(
            q("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE public_id = $2")
                .bind(now)
                .bind(token_public_id),
        )
        .await?;
        let after = ApiToken {
            revoked_at: Some(before.revoked_at.unwrap_or(Timestamp(now))),
            ..before.clone()
        };
        audit::record(
            &mut conn,
            actor,
            now,
            "revoke",
            "api_token",
            token_public_id,
            serde_json::to_value(&before).ok().as_ref(),
            serde_json::to_value(&after).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    pub async fn create_team(&self, actor: &Actor, input: NewTeam) -> Result<Team> {
        let now = self.now_ms();
        let name = required_text("name", &input.name, 100)?;
        let description = optional_text(
            "description",
            input.description.as_deref().unwrap_or(""),
            2000,
        )?;
        let mut conn = self.write().await?;
        if conn
            .fetch_optional(q("SELECT id FROM teams WHERE name = $1").bind(name.as_str()))
            .await?
            .is_some()
        {
            return Err(StoreError::conflict(
                "duplicate",
                Some("name"),
                format!("a team named {name} already exists"),
            ));
        }
        let public_id = new_public_id();
        let row = conn
            .fetch_one(q("INSERT INTO teams (public_id, name, description, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $4, 1) RETURNING id").bind(public_id.as_str()).bind(name.as_str()).bind(description.as_str()).bind(now))
            .await?;
        let team = Team {
            key: row.get("id")?,
            id: public_id.clone(),
            name,
            description,
            created_at: Timestamp(now),
            updated_at: Timestamp(now),
            version: 1,
        };
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "team",
            &public_id,
            None,
            serde_json::to_value(&team).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(team)
    }

    pub async fn team(&self, public_id: &str) -> Result<Team> {
        let id = parse_public_id("team", public_id)?;
        let row = self
            .read()
            .fetch_optional(q("SELECT id, public_id, name, description, created_at, updated_at, version FROM teams WHERE public_id = $1").bind(id))
            .await?
            .ok_or_else(|| StoreError::not_found("team", public_id))?;
        team_from_row(&row)
    }

    pub async fn teams(&self) -> Result<Vec<Team>> {
        let rows = self.read().fetch_all(q("SELECT id, public_id, name, description, created_at, updated_at, version FROM teams ORDER BY name")).await?;
        rows.iter().map(team_from_row).collect()
    }

    pub async fn update_team(
        &self,
        actor: &Actor,
        public_id: &str,
        patch: TeamPatch,
        expected_version: Option<i64>,
    ) -> Result<Team> {
        let now = self.now_ms();
        let before = self.team(public_id).await?;
        if let Some(expected) = expected_version.filter(|v| *v != before.version) {
            return Err(StoreError::VersionMismatch {
                entity: "team",
                expected,
                current: before.version,
            });
        }
        let name = match &patch.name {
            Some(n) => required_text("name", n, 100)?,
            None => before.name.clone(),
        };
        let description = match &patch.description {
            Some(d) => optional_text("description", d, 2000)?,
            None => before.description.clone(),
        };
        let mut conn = self.write().await?;
        if name != before.name
            && conn
                .fetch_optional(q("SELECT id FROM teams WHERE name = $1").bind(name.as_str()))
                .await?
                .is_some()
        {
            return Err(StoreError::conflict(
                "duplicate",
                Some("name"),
                format!("a team named {name} already exists"),
            ));
        }
        let changed = conn
            .execute(q("UPDATE teams SET name = $1, description = $2, updated_at = $3, version = version + 1 WHERE id = $4 AND version = $5").bind(name.as_str()).bind(description.as_str()).bind(now).bind(before.key).bind(before.version))
            .await?;
        if changed == 0 {
            return Err(StoreError::VersionMismatch {
                entity: "team",
                expected: before.version,
                current: before.version + 1,
            });
        }
        let after = Team {
            name,
            description,
            updated_at: Timestamp(now),
            version: before.version + 1,
            ..before.clone()
        };
        audit::record(
            &mut conn,
            actor,
            now,
            "update",
            "team",
            public_id,
            serde_json::to_value(&before).ok().as_ref(),
            serde_json::to_value(&after).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    /// Whether any user exists (the first start offers to create an admin).
    pub async fn has_users(&self) -> Result<bool> {
        Ok(self
            .read()
            .fetch_optional(q("SELECT id FROM users LIMIT 1"))
            .await?
            .is_some())
    }
}
