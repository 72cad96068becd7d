//! PD's JSON shapes as v8.5 writes them: protobuf fields with zero values omitted (so nearly
//! everything defaults), sizes and durations as strings, u64 ids that do not fit an i64, and
//! newer optional fields accepted and ignored.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoresInfo {
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub stores: Vec<StoreInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreInfo {
    pub store: MetaStore,
    #[serde(default)]
    pub status: StoreStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaStore {
    pub id: u64,
    #[serde(default)]
    pub address: String,
    /// 0 Up (omitted), 1 Offline, 2 Tombstone.
    #[serde(default)]
    pub state: i32,
    /// 0 Preparing (omitted), 1 Serving, 2 Removing, 3 Removed.
    #[serde(default)]
    pub node_state: i32,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub status_address: Option<String>,
    /// Unix nanoseconds.
    #[serde(default)]
    pub last_heartbeat: i64,
    #[serde(default)]
    pub physically_destroyed: bool,
    /// "Up", "Offline", "Tombstone", or for Up stores "Disconnected" / "Down".
    pub state_name: StoreState,
}

/// PD's `state_name`, parsed once. A name this client does not know is kept as it came, not
/// refused: a newer PD must not blind the operator, and no rule treats it as Up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum StoreState {
    #[default]
    Up,
    /// Up, but silent for more than 20 s.
    Disconnected,
    /// Up, but silent for max-store-down-time (30 min): PD starts replacing its replicas.
    Down,
    /// Being drained (node_state Removing).
    Offline,
    Tombstone,
    Other(String),
}

impl StoreState {
    pub fn as_str(&self) -> &str {
        match self {
            StoreState::Up => "Up",
            StoreState::Disconnected => "Disconnected",
            StoreState::Down => "Down",
            StoreState::Offline => "Offline",
            StoreState::Tombstone => "Tombstone",
            StoreState::Other(name) => name,
        }
    }

    /// No heartbeat reached PD lately: Disconnected or Down.
    pub fn is_silent(&self) -> bool {
        matches!(self, StoreState::Disconnected | StoreState::Down)
    }
}

impl From<String> for StoreState {
    fn from(name: String) -> Self {
        match name.as_str() {
            "Up" => StoreState::Up,
            "Disconnected" => StoreState::Disconnected,
            "Down" => StoreState::Down,
            "Offline" => StoreState::Offline,
            "Tombstone" => StoreState::Tombstone,
            _ => StoreState::Other(name),
        }
    }
}

impl From<&str> for StoreState {
    fn from(name: &str) -> Self {
        StoreState::from(name.to_string())
    }
}

impl From<StoreState> for String {
    fn from(state: StoreState) -> Self {
        state.as_str().to_string()
    }
}

impl std::fmt::Display for StoreState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreStatus {
    #[serde(default)]
    pub capacity: String,
    #[serde(default)]
    pub available: String,
    #[serde(default)]
    pub leader_count: u64,
    #[serde(default)]
    pub region_count: u64,
    #[serde(default)]
    pub pending_peer_count: u64,
    /// 1 is healthy; 80 and more counts as slow.
    #[serde(default)]
    pub slow_score: Option<u64>,
    #[serde(default)]
    pub is_busy: bool,
    #[serde(default)]
    pub uptime: Option<String>,
    #[serde(default)]
    pub last_heartbeat_ts: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaPeer {
    #[serde(default)]
    pub id: u64,
    #[serde(default)]
    pub store_id: u64,
    /// "Voter", "Learner", ...; "" for a region without a known leader.
    #[serde(default)]
    pub role_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DownPeer {
    pub peer: MetaPeer,
    #[serde(default)]
    pub down_seconds: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegionInfo {
    pub id: u64,
    #[serde(default)]
    pub start_key: String,
    #[serde(default)]
    pub end_key: String,
    #[serde(default)]
    pub peers: Vec<MetaPeer>,
    #[serde(default)]
    pub leader: MetaPeer,
    #[serde(default)]
    pub down_peers: Vec<DownPeer>,
    #[serde(default)]
    pub pending_peers: Vec<MetaPeer>,
    #[serde(default)]
    pub approximate_size: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegionsInfo {
    #[serde(default)]
    pub count: u64,
    /// `null` for /regions/count.
    #[serde(default)]
    pub regions: Option<Vec<RegionInfo>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Member {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub member_id: u64,
    #[serde(default)]
    pub client_urls: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MembersInfo {
    #[serde(default)]
    pub header: Option<ResponseHeader>,
    #[serde(default)]
    pub members: Vec<Member>,
    #[serde(default)]
    pub leader: Option<Member>,
}

/// The header PD puts on its gRPC-shaped answers: which cluster answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseHeader {
    /// A random u64, past i64's range.
    #[serde(default)]
    pub cluster_id: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthEntry {
    pub name: String,
    #[serde(default)]
    pub member_id: u64,
    #[serde(default)]
    pub client_urls: Vec<String>,
    pub health: bool,
}

/// The region checks PD keeps statistics for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionCheck {
    MissPeer,
    ExtraPeer,
    DownPeer,
    PendingPeer,
    OfflinePeer,
    LearnerPeer,
    EmptyRegion,
}

impl RegionCheck {
    pub fn path(self) -> &'static str {
        match self {
            RegionCheck::MissPeer => "miss-peer",
            RegionCheck::ExtraPeer => "extra-peer",
            RegionCheck::DownPeer => "down-peer",
            RegionCheck::PendingPeer => "pending-peer",
            RegionCheck::OfflinePeer => "offline-peer",
            RegionCheck::LearnerPeer => "learner-peer",
            RegionCheck::EmptyRegion => "empty-region",
        }
    }
}

/// A `typeutil.ByteSize` string ("292.5MiB", "0B", also "KB"/"K") in bytes.
pub fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.trim().parse().ok()?;
    let power = match unit
        .trim()
        .to_ascii_lowercase()
        .trim_end_matches('b')
        .trim_end_matches('i')
    {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        "e" => 6,
        _ => return None,
    };
    Some((value * 1024f64.powi(power)).round() as u64)
}

/// A Go `Duration.String()` ("30m0s", "7m50.896421303s", "10ms", "1h0m0s").
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest == "0s" || rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_in_binary_units() {
        assert_eq!(parse_byte_size("0B"), Some(0));
        assert_eq!(parse_byte_size("292.5MiB"), Some(306_708_480));
        assert_eq!(parse_byte_size("96.73GiB"), Some(103_863_046_636));
        assert_eq!(parse_byte_size("1KB"), Some(1024));
        assert_eq!(parse_byte_size("lots"), None);
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration("30m0s"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_go_duration("1h0m0s"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_go_duration("10ms"), Some(Duration::from_millis(10)));
        assert_eq!(
            parse_go_duration("48h0m0s"),
            Some(Duration::from_secs(48 * 3600))
        );
        let d = parse_go_duration("7m50.896421303s").unwrap();
        assert!((d.as_secs_f64() - 470.896421303).abs() < 1e-6);
        assert_eq!(parse_go_duration("soon"), None);
    }

    #[test]
    fn a_store_state_pd_adds_later_is_kept_and_never_read_as_up() {
        let store: MetaStore =
            serde_json::from_value(serde_json::json!({"id": 1, "state_name": "Preparing"}))
                .unwrap();
        assert_eq!(store.state_name, StoreState::Other("Preparing".into()));
        assert!(!store.state_name.is_silent());
        assert_eq!(
            serde_json::to_value(&store).unwrap()["state_name"],
            "Preparing",
            "written back as PD spelled it"
        );
        let down: StoreState = "Down".into();
        assert!(down.is_silent());
    }
}
