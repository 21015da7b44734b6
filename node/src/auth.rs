//! Bearer tokens → users. Each token maps to one user with a bureau and a role (config).

use ledger::Regions;
use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use config::UsersFile;
use ledger::{Actor, BureauCode, Role};

use crate::api::ApiError;
use crate::intake::IntakeSource;
use crate::rate::TokenBucket;

#[derive(Clone, Debug)]
pub struct User {
    pub actor: Actor,
    pub display_name: String,
    /// The token's request budget (shared by clones of the user).
    pub bucket: Arc<std::sync::Mutex<TokenBucket>>,
    /// Console connections the user may hold open on one process.
    pub consoles_max: usize,
    /// The account of a person signed in with a session; `None` for a users-file token.
    pub person: Option<Arc<ledger::organisation::Person>>,
}

impl User {
    /// Spends one request of the token's budget, or says when there is one again (429).
    pub fn spend_request(&self) -> Result<(), ApiError> {
        let allowed = self.bucket.lock().expect("not poisoned").take(1, std::time::Instant::now());
        allowed.map_err(|wait| ApiError::RateLimited {
            message: format!("user {} is over its request rate", self.actor.user),
            retry_after_secs: wait.as_secs_f64().ceil() as u64,
        })
    }
}

/// Token lookup tables, keyed by the SHA-256 of the token (so a users file may hold hashes
/// only). A `HashMap` is fine here: it never reaches the ledger.
pub struct Users {
    by_token: HashMap<String, User>,
    /// Platform operators' tokens → their names.
    admins: HashMap<String, String>,
    /// Intake sources' tokens → the sources.
    sources: HashMap<String, Arc<IntakeSource>>,
    /// Export consumers' tokens → (name, bureau scope).
    consumers: HashMap<String, (String, BureauCode)>,
    /// Registration systems' tokens → their feeds of the entity register.
    register_feeds: HashMap<String, Arc<RegisterFeed>>,
}

/// A registration system feeding the live entity register (`routes::register`).
pub struct RegisterFeed {
    pub name: String,
    pub bureau: BureauCode,
    pub bucket: std::sync::Mutex<TokenBucket>,
}

impl Users {
    /// Converts validated config into users; fails on a bureau that is not a region code of
    /// `regions` (the group's table; a gateway, which holds none, gives `None` and its nodes
    /// check the codes).
    pub fn from_config(file: &UsersFile, regions: Option<&Regions>) -> Result<Users, String> {
        let known = |text: &str| match regions {
            Some(regions) => regions.parse_known(text),
            None => BureauCode::parse_digits(text),
        };
        let mut by_token = HashMap::new();
        for user in &file.users {
            let bureau = known(&user.bureau)
                .ok_or_else(|| format!("user {}: {} is not a region code", user.name, user.bureau))?;
            let role = Role::parse(&user.role)
                .filter(|role| !matches!(role, Role::System | Role::Peer | Role::Source | Role::Department))
                .ok_or_else(|| format!("user {}: unknown role", user.name))?;
            let actor = Actor { user: user.name.clone(), bureau, role };
            let rate = user.requests_per_second.unwrap_or(config::USER_REQUESTS_PER_SECOND_DEFAULT);
            let bucket = Arc::new(std::sync::Mutex::new(TokenBucket::new(f64::from(rate))));
            let hash =
                config::credential_hash(&user.name, &user.token, &user.token_sha256).map_err(|e| e.to_string())?;
            let consoles_max = user.consoles_max.unwrap_or(config::limits::CONSOLES_PER_USER_MAX);
            by_token.insert(
                hash,
                User { actor, display_name: user.display_name.clone(), bucket, consoles_max, person: None },
            );
        }
        let hash = |name: &str, token: &Option<String>, token_sha256: &Option<String>| {
            config::credential_hash(name, token, token_sha256).map_err(|e| e.to_string())
        };
        let mut admins = HashMap::new();
        for admin in &file.admins {
            admins.insert(hash(&admin.name, &admin.token, &admin.token_sha256)?, admin.name.clone());
        }
        let mut sources = HashMap::new();
        for source in &file.sources {
            sources.insert(
                hash(&source.name, &source.token, &source.token_sha256)?,
                Arc::new(IntakeSource::from_config(source, known)?),
            );
        }
        let mut consumers = HashMap::new();
        for consumer in &file.consumers {
            let bureau = known(&consumer.bureau)
                .ok_or_else(|| format!("consumer {}: {} is not a region code", consumer.name, consumer.bureau))?;
            consumers.insert(
                hash(&consumer.name, &consumer.token, &consumer.token_sha256)?,
                (consumer.name.clone(), bureau),
            );
        }
        let mut register_feeds = HashMap::new();
        for feed in &file.register_feeds {
            let bureau = known(&feed.bureau)
                .ok_or_else(|| format!("register feed {}: {} is not a region code", feed.name, feed.bureau))?;
            let bucket = std::sync::Mutex::new(TokenBucket::new(f64::from(feed.changes_per_second)));
            register_feeds.insert(
                hash(&feed.name, &feed.token, &feed.token_sha256)?,
                Arc::new(RegisterFeed { name: feed.name.clone(), bureau, bucket }),
            );
        }
        Ok(Users { by_token, admins, sources, consumers, register_feeds })
    }

    /// Every bureau a user or consumer is configured with.
    pub fn bureaus(&self) -> impl Iterator<Item = BureauCode> + '_ {
        self.by_token.values().map(|user| user.actor.bureau).chain(self.consumers.values().map(|(_, bureau)| *bureau))
    }

    /// The intake source presenting the bearer token.
    pub fn authenticate_source(&self, headers: &HeaderMap) -> Result<Arc<IntakeSource>, ApiError> {
        let token = config::token_hash(bearer(headers)?);
        self.sources.get(&token).cloned().ok_or_else(|| ApiError::Unauthorized("not an intake source's token".into()))
    }

    /// The registration system presenting the bearer token.
    pub fn authenticate_register_feed(&self, headers: &HeaderMap) -> Result<Arc<RegisterFeed>, ApiError> {
        let token = config::token_hash(bearer(headers)?);
        self.register_feeds
            .get(&token)
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("not a registration system's token".into()))
    }

    /// The export consumer presenting the bearer token: its name and bureau scope.
    pub fn authenticate_consumer(&self, headers: &HeaderMap) -> Result<(String, BureauCode), ApiError> {
        let token = config::token_hash(bearer(headers)?);
        self.consumers
            .get(&token)
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("not an export consumer's token".into()))
    }

    /// The platform operator presenting the bearer token, for membership changes.
    pub fn authenticate_admin(&self, headers: &HeaderMap) -> Result<&str, ApiError> {
        let token = config::token_hash(bearer(headers)?);
        self.admins
            .get(&token)
            .map(String::as_str)
            .ok_or_else(|| ApiError::Forbidden("membership changes need a platform operator's token".into()))
    }

    /// The user presenting the bearer token, within its request budget (429 beyond it). A
    /// request relayed by another node was counted where it arrived.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<&User, ApiError> {
        let user = self.user_for_token(bearer(headers)?)?;
        if headers.contains_key(crate::api::headers::RELAY_HOPS) {
            return Ok(user);
        }
        user.spend_request()?;
        Ok(user)
    }

    pub fn user_for_token(&self, token: &str) -> Result<&User, ApiError> {
        self.by_token.get(&config::token_hash(token)).ok_or_else(|| ApiError::Unauthorized("unknown token".into()))
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
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

/// The users of a node, replaceable while it runs: `xietong node` reloads its users file on
/// SIGHUP, so a token is added or revoked without a restart. Lookups answer owned values, so no
/// caller holds the old table across a reload.
pub struct UserDirectory {
    current: std::sync::RwLock<Arc<Users>>,
    /// People's sessions, on a node (a gateway holds no accounts).
    sessions: Option<Arc<crate::sessions::Sessions>>,
}

impl UserDirectory {
    pub fn new(users: Users) -> UserDirectory {
        UserDirectory { current: std::sync::RwLock::new(Arc::new(users)), sessions: None }
    }

    /// A node's directory: the users file and people's sessions.
    pub fn with_sessions(users: Users, sessions: Arc<crate::sessions::Sessions>) -> UserDirectory {
        UserDirectory { current: std::sync::RwLock::new(Arc::new(users)), sessions: Some(sessions) }
    }

    pub fn sessions(&self) -> Option<&Arc<crate::sessions::Sessions>> {
        self.sessions.as_ref()
    }

    fn users(&self) -> Arc<Users> {
        self.current.read().expect("not poisoned").clone()
    }

    /// Replaces every credential at once.
    pub fn replace(&self, users: Users) {
        *self.current.write().expect("not poisoned") = Arc::new(users);
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Result<User, ApiError> {
        let token = bearer(headers).inspect_err(|error| log_refusal(headers, error))?;
        if token.starts_with(crate::sessions::SESSION_PREFIX) {
            let user = self.user_for_token(token).inspect_err(|error| log_refusal(headers, error))?;
            if !headers.contains_key(crate::api::headers::RELAY_HOPS) {
                user.spend_request()?;
            }
            return Ok(user);
        }
        self.users().authenticate(headers).cloned().inspect_err(|error| log_refusal(headers, error))
    }

    /// The user of a token: a person's session, or a users-file token.
    pub fn user_for_token(&self, token: &str) -> Result<User, ApiError> {
        if token.starts_with(crate::sessions::SESSION_PREFIX) {
            return match &self.sessions {
                Some(sessions) => sessions.user(token, crate::api::time::now_ms()),
                None => Err(ApiError::Unauthorized("a session is checked by a node of the group".into())),
            };
        }
        self.users().user_for_token(token).cloned()
    }

    /// The role of the person a session token signs in (none for another token or an invalid
    /// session): uncounted and without spending the budget, for a gate before the handler.
    pub fn session_role(&self, token: &str) -> Option<Role> {
        if !token.starts_with(crate::sessions::SESSION_PREFIX) {
            return None;
        }
        let person = self.sessions.as_ref()?.person_of(token, crate::api::time::now_ms())?;
        Some(person.role())
    }

    /// Every bureau a user or consumer of the current file is configured with.
    pub fn bureaus(&self) -> Vec<BureauCode> {
        self.users().bureaus().collect()
    }

    pub fn authenticate_admin(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        self.users().authenticate_admin(headers).map(str::to_owned).inspect_err(|error| log_refusal(headers, error))
    }

    pub fn authenticate_source(&self, headers: &HeaderMap) -> Result<Arc<IntakeSource>, ApiError> {
        self.users().authenticate_source(headers).inspect_err(|error| log_refusal(headers, error))
    }

    pub fn authenticate_consumer(&self, headers: &HeaderMap) -> Result<(String, BureauCode), ApiError> {
        self.users().authenticate_consumer(headers).inspect_err(|error| log_refusal(headers, error))
    }

    pub fn authenticate_register_feed(&self, headers: &HeaderMap) -> Result<Arc<RegisterFeed>, ApiError> {
        self.users().authenticate_register_feed(headers).inspect_err(|error| log_refusal(headers, error))
    }

    /// Whether the request carries a credential the API knows (a user's, an intake source's, an
    /// export consumer's or a registration system's), without spending any budget: a gateway refuses the others before
    /// it reads their bodies; the node authenticates again and counts.
    pub fn knows_api_credential(&self, headers: &HeaderMap) -> bool {
        let Ok(token) = bearer(headers) else { return false };
        let hash = config::token_hash(token);
        let users = self.users();
        users.by_token.contains_key(&hash)
            || users.sources.contains_key(&hash)
            || users.consumers.contains_key(&hash)
            || users.register_feeds.contains_key(&hash)
    }
}

/// Every refused credential is logged, with the hash prefix of the token presented (never the
/// token itself), so an operator can tell a misconfigured client from a probe.
fn log_refusal(headers: &HeaderMap, error: &ApiError) {
    let presented = bearer(headers).map(|token| config::token_hash(token)[..12].to_owned()).unwrap_or_default();
    let (code, message) = error.code_and_message();
    tracing::warn!(token_sha256_prefix = %presented, code, message, "credential refused");
}

/// Reads the users file at `path` again and swaps it in (SIGHUP on a node or a gateway); a file
/// that does not load is refused whole and the credentials stay as they were.
pub fn reload_users_file(path: &std::path::Path, users: &UserDirectory, regions: Option<&Regions>) {
    let loaded = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| config::UsersFile::parse(path, &text).map_err(|e| e.to_string()))
        .and_then(|file| Users::from_config(&file, regions));
    match loaded {
        Ok(fresh) => {
            users.replace(fresh);
            tracing::info!(file = %path.display(), "users reloaded");
        }
        Err(error) => tracing::error!(file = %path.display(), %error, "users file refused; credentials unchanged"),
    }
}

/// Runs `reload` on every SIGHUP until `shutdown` (a node reloads its users and peer tokens, a
/// gateway its users).
pub async fn on_hangup(shutdown: tokio_util::sync::CancellationToken, mut reload: impl FnMut()) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("no SIGHUP handler: the users file is read at start only");
        return;
    };
    loop {
        tokio::select! {
            received = hangups.recv() => if received.is_none() { return },
            () = shutdown.cancelled() => return,
        }
        reload();
    }
}
