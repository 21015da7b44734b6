//! Bearer tokens → users. Each token maps to one user with a bureau and a role (config).

use std::collections::HashMap;

use axum::http::{header, HeaderMap};
use cluster::ledger::{Actor, BureauCode, Role};
use config::UsersFile;

use crate::api::ApiError;

#[derive(Clone, Debug)]
pub struct User {
    pub actor: Actor,
    pub display_name: String,
}

/// Token lookup table. A `HashMap` is fine here: it never reaches the ledger.
pub struct Users {
    by_token: HashMap<String, User>,
    /// Platform operators' tokens → their names.
    admins: HashMap<String, String>,
}

impl Users {
    /// Converts validated config into users; fails on a bureau that is not a real region.
    pub fn from_config(file: &UsersFile) -> Result<Users, String> {
        let mut by_token = HashMap::new();
        for user in &file.users {
            let bureau = BureauCode::parse_known(&user.bureau)
                .ok_or_else(|| format!("user {}: {} is not a region code", user.name, user.bureau))?;
            let role = Role::parse(&user.role)
                .filter(|role| !matches!(role, Role::System | Role::Peer))
                .ok_or_else(|| format!("user {}: unknown role", user.name))?;
            let actor = Actor { user: user.name.clone(), bureau, role };
            by_token.insert(user.token.clone(), User { actor, display_name: user.display_name.clone() });
        }
        let admins = file.admins.iter().map(|admin| (admin.token.clone(), admin.name.clone())).collect();
        Ok(Users { by_token, admins })
    }

    /// The platform operator presenting the bearer token, for membership changes.
    pub fn authenticate_admin(&self, headers: &HeaderMap) -> Result<&str, ApiError> {
        let token = bearer(headers)?;
        self.admins
            .get(token)
            .map(String::as_str)
            .ok_or_else(|| ApiError::Forbidden("membership changes need a platform operator's token".into()))
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Result<&User, ApiError> {
        self.user_for_token(bearer(headers)?)
    }

    pub fn user_for_token(&self, token: &str) -> Result<&User, ApiError> {
        self.by_token.get(token).ok_or_else(|| ApiError::Unauthorized("unknown token".into()))
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("an Authorization: Bearer <token> header is required".into()))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be Bearer <token>".into()))
}
