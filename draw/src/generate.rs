//! A realistic synthetic entity directory for demos and benchmarks: real county codes under a
//! region, valid USCCs (GB 32100 check character), an industry mix and credit statuses in the
//! proportions a Chinese county's register roughly has. Deterministic for a seed.

use ledger::{BureauCode, Regions, Uscc};

use crate::directory::HEADER;

/// Industry codes with their share of registered entities (per mille) and the word in a name.
pub const INDUSTRY_MIX: &[(&str, u32, &str)] = &[
    ("retail", 300, "商贸"),
    ("wholesale", 150, "贸易"),
    ("catering", 150, "餐饮"),
    ("services", 140, "服务"),
    ("manufacturing", 100, "制造"),
    ("food_production", 50, "食品"),
    ("cosmetics", 30, "化妆品"),
    ("special_equipment", 30, "机电设备"),
    ("drugs", 25, "医药"),
    ("medical_devices", 25, "医疗器械"),
];

/// Credit statuses (信用状态) with their share per mille: most entities are in good standing; some
/// are on the list of abnormal operations (经营异常名录), few on the serious list (严重违法失信).
pub const CREDIT_MIX: &[(&str, u32)] = &[("normal", 920), ("abnormal", 60), ("serious_violation", 20)];

/// Trade-name syllables (字号).
const TRADE_NAMES: &[&str] = &[
    "华信", "永安", "恒达", "金穗", "鸿运", "新锐", "东方", "盛世", "和美", "瑞丰", "嘉禾", "利民", "创优", "百川",
    "宏图", "安泰",
];

/// The 31 USCC symbols; an organisation code is an index written in them.
const SYMBOLS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

fn pick<'a, T>(rng: &mut fastrand::Rng, mix: &'a [(T, u32)]) -> &'a T {
    let total: u32 = mix.iter().map(|(_, share)| share).sum();
    let mut roll = rng.u32(0..total);
    for (value, share) in mix {
        if roll < *share {
            return value;
        }
        roll -= share;
    }
    &mix[mix.len() - 1].0
}

/// The USCC of synthetic entity `serial` registered in `county`: a legal person (91), the
/// county's code, `serial` as the organisation code in base 31, and a valid check character.
pub fn synthetic_uscc(county: BureauCode, serial: u64) -> Uscc {
    let mut code = serial;
    let mut org = [b'0'; 9];
    for slot in org.iter_mut().rev() {
        *slot = SYMBOLS[(code % 31) as usize];
        code /= 31;
    }
    let body = format!("91{county}{}", std::str::from_utf8(&org).expect("ASCII"));
    Uscc::with_check_character(&body).expect("17 valid symbols")
}

/// `entities` rows over the counties under `region` (or `region` itself if it is a county).
pub fn generate(entities: u64, region: BureauCode, seed: u64) -> Vec<u8> {
    let regions = Regions::compiled();
    let mut counties: Vec<BureauCode> =
        regions.subtree(region).filter(|r| regions.children(r.code).next().is_none()).map(|r| r.code).collect();
    if counties.is_empty() {
        counties.push(region);
    }
    let industries: Vec<((&str, &str), u32)> =
        INDUSTRY_MIX.iter().map(|(code, share, word)| ((*code, *word), *share)).collect();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::with_capacity(entities as usize * 110 + 64);
    out.extend_from_slice(HEADER.as_bytes());
    out.push(b'\n');
    for index in 0..entities {
        let county = counties[rng.usize(0..counties.len())];
        let (industry, word) = *pick(&mut rng, &industries);
        let credit = *pick(&mut rng, CREDIT_MIX);
        let uscc = synthetic_uscc(county, index + seed % 1_000_000 * 10_000_000);
        let county_name = regions.name(county).unwrap_or("");
        let trade = TRADE_NAMES[rng.usize(0..TRADE_NAMES.len())];
        let line = format!(
            "{},{county_name}{trade}{word}有限公司{index},{county},{industry},{credit},{county_name}人民路{}号\n",
            uscc.as_str(),
            rng.u32(1..2000)
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}
