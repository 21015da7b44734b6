//! The bureau tree: every market-regulation bureau is keyed by its 6-digit GB/T 2260 region code,
//! and bureaus form the administrative tree national → province → prefecture → county.
//!
//! Version 0 of the tree is compiled into the binary (`cluster/ledger/data/regions.csv`, frozen:
//! a follower replaying from the first entry on any build must start from the same table). Later
//! versions enter through the log (`reference`): each group's ledger holds the table its
//! commands are decided with. Two rules make every version agree with every older one on the
//! codes it knew: a code is never removed (a region merged away is *retired*: old tasks keep it,
//! new ones may not name it) and a code's parent and level never change. So whether a known code
//! lies within another is the same in every version; only which codes are known and active, and
//! their names, change.
//!
//! Below a county bureau are its market-supervision stations (市场监管所): units of the bureau,
//! not regions of GB/T 2260, so their codes are nine digits, the county's code and a station
//! number (`440106004` is the fourth station of 天河区). They are enrolled by the county through
//! the log (`organisation`) and join the table the ledger decides with as regions of the level
//! `Station`, so every rule that climbs the tree (access, roll-ups, escalation) climbs from a
//! station to its county. A station's county is its code's first six digits: even a table that
//! does not know a station (another group's, a gateway's) places it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

/// A bureau, identified by its 6-digit region code (`440106`), or a station below a county by
/// its 9-digit unit code (`440106004`). `000000` is the national bureau.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BureauCode(u32);

/// The national bureau, root of the tree. This is a platform convention, not a GB/T 2260 code.
pub const NATIONAL: BureauCode = BureauCode(0);

/// The region codes have six decimal digits.
const REGION_CODE_DIGITS: usize = 6;
/// The numbers six digits hold.
const REGION_CODE_END: u32 = 1_000_000;
/// A station's code: its county's and three digits more.
const STATION_CODE_DIGITS: usize = 9;
/// The numbers a unit code (a region's six digits or a station's nine) holds.
const UNIT_CODE_END: u32 = 1_000_000_000;
/// The numbers of a county's stations: three digits, from 1 (a county has 5 to 30).
pub const STATION_NUMBER_MAX: u32 = 999;
const STATION_NUMBER_END: u32 = STATION_NUMBER_MAX + 1;

impl BureauCode {
    /// Parses a code of exactly six ASCII digits. It does not check that the region exists;
    /// a group's table does (`Regions::parse_known`).
    pub fn parse_digits(text: &str) -> Option<BureauCode> {
        if text.len() != REGION_CODE_DIGITS || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(BureauCode)
    }

    /// Parses a unit code: a region's six digits or a station's nine, whose number is not 0.
    /// It does not check that the unit exists; a group's table does (`Regions::parse_known`).
    pub fn parse_unit(text: &str) -> Option<BureauCode> {
        match text.len() {
            REGION_CODE_DIGITS => BureauCode::parse_digits(text),
            STATION_CODE_DIGITS if text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse().ok().and_then(BureauCode::from_number)
            }
            _ => None,
        }
    }

    /// The code of a number (a key read back from the store): at most six digits, or nine
    /// whose last three (the station number) are not 0.
    pub fn from_number(number: u32) -> Option<BureauCode> {
        let well_formed = number < REGION_CODE_END
            || (number < UNIT_CODE_END
                && number / STATION_NUMBER_END >= 1
                && !number.is_multiple_of(STATION_NUMBER_END));
        well_formed.then_some(BureauCode(number))
    }

    /// The code of station `number` of `county` (a six-digit code), when the number is 1 to
    /// `STATION_NUMBER_MAX`.
    pub fn station(county: BureauCode, number: u32) -> Option<BureauCode> {
        let fits = county.0 < REGION_CODE_END && county != NATIONAL && (1..=STATION_NUMBER_MAX).contains(&number);
        fits.then(|| BureauCode(county.0 * STATION_NUMBER_END + number))
    }

    /// Whether the code is a station's (nine digits).
    pub fn is_station(self) -> bool {
        self.0 >= REGION_CODE_END
    }

    /// The county of a station's code (its first six digits); `None` for a region's code.
    pub fn county_of_station(self) -> Option<BureauCode> {
        self.is_station().then_some(BureauCode(self.0 / STATION_NUMBER_END))
    }

    /// A station's number within its county; `None` for a region's code.
    pub fn station_number(self) -> Option<u32> {
        self.is_station().then_some(self.0 % STATION_NUMBER_END)
    }

    /// Parses a code known to the compiled table, version 0: for tests, demos and tools that
    /// stand outside any group. A node checks codes against its group's table.
    pub fn parse_compiled(text: &str) -> Option<BureauCode> {
        Regions::compiled().parse_known(text)
    }

    pub fn as_u32(self) -> u32 {
        self.0
    }
}

impl fmt::Display for BureauCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

impl fmt::Debug for BureauCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

/// A region's place in the tree. Declaration order is depth: a child lies deeper than its
/// parent (a county may sit right under a province: 直辖市 districts, 省直辖县级).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RegionLevel {
    National,
    Province,
    Prefecture,
    County,
    /// A market-supervision station of a county bureau (enrolled, not adopted from GB/T 2260).
    Station,
}

impl RegionLevel {
    pub const ALL: &'static [RegionLevel] = &[
        RegionLevel::National,
        RegionLevel::Province,
        RegionLevel::Prefecture,
        RegionLevel::County,
        RegionLevel::Station,
    ];

    /// The word the region files use.
    pub fn as_str(self) -> &'static str {
        match self {
            RegionLevel::National => "national",
            RegionLevel::Province => "province",
            RegionLevel::Prefecture => "prefecture",
            RegionLevel::County => "county",
            RegionLevel::Station => "station",
        }
    }

    fn parse(text: &str) -> Option<RegionLevel> {
        RegionLevel::ALL.iter().copied().find(|level| level.as_str() == text)
    }
}

/// One row of a region file: what an operator's table says about a code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionRow {
    pub code: BureauCode,
    pub name: String,
    pub level: RegionLevel,
    /// `None` only for the national bureau.
    pub parent: Option<BureauCode>,
}

/// A region as a group's table holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub code: BureauCode,
    pub name: String,
    pub level: RegionLevel,
    /// `None` only for the national bureau.
    pub parent: Option<BureauCode>,
    /// Merged away or renumbered: old tasks keep the code, new ones may not name it.
    pub retired: bool,
}

/// The whole region table of one version: every code ever adopted, retired ones included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regions {
    by_code: BTreeMap<BureauCode, Region>,
}

/// Version 0, frozen (its SHA-256 is pinned by a test): what a group decides with until it
/// adopts a table through the log.
const REGIONS_CSV: &str = include_str!("../data/regions.csv");

/// Number of data rows in `regions.csv`; asserted on load so a truncated copy cannot slip in.
const REGION_ROWS: usize = 3_211;

/// Rows a region file may hold: GB/T 2260 has about 3,200 codes; room for growth, and a bound
/// on what one adoption costs every replica.
pub const REGION_ROWS_MAX: usize = 10_000;
/// Stations a table holds at most: a province has about 1,600 township-level units; room, and
/// a bound on the core that carries them.
pub const STATIONS_MAX: usize = 10_000;
/// A region's name, in characters (the longest real one is about 20).
pub const REGION_NAME_CHARS_MAX: usize = 64;

/// The tree is at most five levels deep (national to station), so any upward walk ends within
/// this many steps.
const TREE_DEPTH_MAX: usize = 5;

impl Regions {
    /// Version 0, the compiled table.
    pub fn compiled() -> &'static Regions {
        Regions::compiled_shared()
    }

    /// Version 0, shared: what a ledger that adopted no table holds.
    pub fn compiled_shared() -> &'static Arc<Regions> {
        static REGIONS: OnceLock<Arc<Regions>> = OnceLock::new();
        REGIONS.get_or_init(|| {
            let rows = Regions::parse_csv(REGIONS_CSV).expect("the compiled regions.csv is valid (checked by tests)");
            assert_eq!(rows.len(), REGION_ROWS, "regions.csv is complete");
            Arc::new(Regions::of_rows(&rows).expect("the compiled regions.csv is a tree (checked by tests)"))
        })
    }

    /// Parses a region file (`code,name,level,parent_code` with a header line, the format of
    /// `regions.csv`): each row well formed, codes strictly increasing. Whether the rows form
    /// a tree is `of_rows`'s to check.
    pub fn parse_csv(text: &str) -> Result<Vec<RegionRow>, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header)) if header.trim_end() == "code,name,level,parent_code" => {}
            _ => return Err("the first line must be the header code,name,level,parent_code".into()),
        }
        let mut rows: Vec<RegionRow> = Vec::new();
        for (number, line) in lines {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let at = |reason: String| format!("line {}: {reason}", number + 1);
            if rows.len() == REGION_ROWS_MAX {
                return Err(format!("more than {REGION_ROWS_MAX} regions"));
            }
            let fields: Vec<&str> = line.split(',').collect();
            let [code, name, level, parent] = fields[..] else {
                return Err(at(format!("{} fields, not the four code,name,level,parent_code", fields.len())));
            };
            let code = BureauCode::parse_digits(code).ok_or_else(|| at(format!("{code:?} is not six digits")))?;
            let level = RegionLevel::parse(level)
                .filter(|level| *level != RegionLevel::Station)
                .ok_or_else(|| at(format!("{level:?} is not a level of GB/T 2260")))?;
            let parent = match parent {
                "" => None,
                text => Some(
                    BureauCode::parse_digits(text).ok_or_else(|| at(format!("parent {text:?} is not six digits")))?,
                ),
            };
            if rows.last().is_some_and(|last| last.code >= code) {
                return Err(at(format!("{code} is not after the code before it (codes strictly increase)")));
            }
            rows.push(RegionRow { code, name: name.to_owned(), level, parent });
        }
        Ok(rows)
    }

    /// The table of `rows`, all active, when they form the tree: the national bureau its one
    /// root, every other row's parent among the rows and shallower, names present and short.
    pub fn of_rows(rows: &[RegionRow]) -> Result<Regions, String> {
        if rows.len() > REGION_ROWS_MAX {
            return Err(format!("more than {REGION_ROWS_MAX} regions"));
        }
        let mut by_code = BTreeMap::new();
        for row in rows {
            if row.level == RegionLevel::Station {
                return Err(format!(
                    "{}: stations are enrolled by their county, not listed in a region file",
                    row.code
                ));
            }
            let region =
                Region { code: row.code, name: row.name.clone(), level: row.level, parent: row.parent, retired: false };
            if by_code.insert(row.code, region).is_some() {
                return Err(format!("{} is listed twice", row.code));
            }
        }
        let regions = Regions { by_code };
        regions.check()?;
        Ok(regions)
    }

    /// A table with `overlay`'s regions put over this one's (a region of the overlay replaces
    /// the one of its code), checked as a whole.
    pub fn with(&self, overlay: impl IntoIterator<Item = Region>) -> Result<Regions, String> {
        let mut by_code = self.by_code.clone();
        for region in overlay {
            by_code.insert(region.code, region);
        }
        let regions = Regions { by_code };
        regions.check()?;
        Ok(regions)
    }

    /// The invariants of a table: one root (the national bureau), every other region's parent
    /// in the table and shallower, an active region's parent active, names present and short; a
    /// station's code is its county's and a number, every other code six digits.
    fn check(&self) -> Result<(), String> {
        if self.by_code.len() > REGION_ROWS_MAX + STATIONS_MAX {
            return Err(format!("more than {REGION_ROWS_MAX} regions and {STATIONS_MAX} stations"));
        }
        for region in self.by_code.values() {
            let code = region.code;
            let is_station = region.level == RegionLevel::Station;
            if code.is_station() != is_station
                || (is_station && (region.parent != code.county_of_station() || code.station_number() == Some(0)))
            {
                return Err(format!(
                    "{code}: a station's code is its county's six digits and a number, every other code six digits"
                ));
            }
            let chars = region.name.chars().count();
            if chars == 0 || chars > REGION_NAME_CHARS_MAX || region.name.chars().any(char::is_control) {
                return Err(format!("{code}: a name of 1 to {REGION_NAME_CHARS_MAX} printable characters"));
            }
            match (code == NATIONAL, region.level, region.parent) {
                (true, RegionLevel::National, None) if !region.retired => {}
                (true, ..) => return Err("000000 is the national bureau: national, no parent, active".into()),
                (false, RegionLevel::National, _) | (false, _, None) => {
                    return Err(format!("{code}: only 000000 is national, and every other region has a parent"))
                }
                (false, level, Some(parent)) => {
                    let Some(above) = self.by_code.get(&parent) else {
                        return Err(format!("{code}'s parent {parent} is not in the table"));
                    };
                    if above.level >= level || (level == RegionLevel::Station && above.level != RegionLevel::County) {
                        return Err(format!(
                            "{code} ({}) is not below its parent {parent} ({})",
                            level.as_str(),
                            above.level.as_str()
                        ));
                    }
                    if above.retired && !region.retired {
                        return Err(format!("{code} is active under the retired {parent}"));
                    }
                }
            }
        }
        if !self.by_code.contains_key(&NATIONAL) {
            return Err("the table has no national bureau 000000".into());
        }
        Ok(())
    }

    /// Whether the table knows `code`: every code it ever adopted, retired ones included (old
    /// tasks keep them).
    pub fn contains(&self, code: BureauCode) -> bool {
        self.by_code.contains_key(&code)
    }

    /// Whether a new task, dispatch or campaign may name `code`: known and not retired.
    pub fn is_active(&self, code: BureauCode) -> bool {
        self.by_code.get(&code).is_some_and(|region| !region.retired)
    }

    /// Whether `code` is a region of the table (known, not a station): what an entity's
    /// registered region, a campaign's scope or a group's bureau must be.
    pub fn is_region(&self, code: BureauCode) -> bool {
        self.by_code.get(&code).is_some_and(|region| region.level != RegionLevel::Station)
    }

    /// Parses a unit code (six digits or a station's nine) and checks that the table knows it.
    pub fn parse_known(&self, text: &str) -> Option<BureauCode> {
        BureauCode::parse_unit(text).filter(|code| self.contains(*code))
    }

    /// The code of `number` when the table knows it.
    pub fn known(&self, number: u32) -> Option<BureauCode> {
        BureauCode::from_number(number).filter(|code| self.contains(*code))
    }

    pub fn region(&self, code: BureauCode) -> Option<&Region> {
        self.by_code.get(&code)
    }

    pub fn name(&self, code: BureauCode) -> Option<&str> {
        self.by_code.get(&code).map(|region| region.name.as_str())
    }

    /// Every region, retired ones included, in code order.
    pub fn regions(&self) -> impl Iterator<Item = &Region> {
        self.by_code.values()
    }

    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// The bureau directly above `code`; `None` for the national bureau or an unknown region.
    /// A station's is its county, known to the table or not (its code says it).
    pub fn parent(&self, code: BureauCode) -> Option<BureauCode> {
        match self.by_code.get(&code) {
            Some(region) => region.parent,
            None => code.county_of_station(),
        }
    }

    /// `code` itself and every bureau above it, up to the national bureau: the bureaus whose
    /// subtree holds `code`. Empty for an unknown code.
    pub fn ancestors(&self, code: BureauCode) -> impl Iterator<Item = BureauCode> + '_ {
        let mut current = self.contains(code).then_some(code);
        std::iter::from_fn(move || {
            let here = current?;
            current = self.parent(here);
            Some(here)
        })
        .take(TREE_DEPTH_MAX + 1)
    }

    /// The bureau of `level` that `code` lies in (itself at that level), when the table knows one.
    pub fn ancestor_at(&self, code: BureauCode, level: RegionLevel) -> Option<BureauCode> {
        self.ancestors(code).find(|c| self.region(*c).is_some_and(|region| region.level == level))
    }

    /// The province `code` lies in (itself for a province), when the table knows one.
    pub fn province_of(&self, code: BureauCode) -> Option<BureauCode> {
        self.ancestor_at(code, RegionLevel::Province)
    }

    /// True when `code` is `ancestor` itself or lies below it in the tree.
    pub fn is_within(&self, code: BureauCode, ancestor: BureauCode) -> bool {
        let mut current = Some(code);
        for _ in 0..=TREE_DEPTH_MAX {
            match current {
                Some(c) if c == ancestor => return true,
                Some(c) => current = self.parent(c),
                None => return false,
            }
        }
        unreachable!("the region tree is at most {TREE_DEPTH_MAX} levels deep (levels strictly deepen)")
    }

    /// The direct children of a bureau, in code order, retired ones included.
    pub fn children(&self, parent: BureauCode) -> impl Iterator<Item = &Region> {
        self.by_code.values().filter(move |region| region.parent == Some(parent))
    }

    /// Every bureau in the subtree of `root`, `root` included, in code order, retired ones
    /// included.
    pub fn subtree(&self, root: BureauCode) -> impl Iterator<Item = &Region> {
        self.by_code.values().filter(move |region| self.is_within(region.code, root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> BureauCode {
        BureauCode::parse_compiled(text).expect(text)
    }

    #[test]
    fn tree_has_the_documented_shape() {
        let regions = Regions::compiled();
        assert_eq!(regions.name(code("440106")), Some("天河区"));
        assert!(regions.is_within(code("440106"), code("440100")));
        assert!(regions.is_within(code("440106"), code("440000")));
        assert!(regions.is_within(code("440106"), NATIONAL));
        assert!(!regions.is_within(code("440106"), code("440300")));
        assert!(!regions.is_within(code("440000"), code("440106")));
        // Province-parented counties (municipality districts, 省直辖县级).
        assert!(regions.is_within(code("110105"), code("110000")));
        assert!(regions.is_within(code("429004"), code("420000")));
        assert_eq!(regions.children(code("440000")).count(), 21);
    }

    #[test]
    fn codes_are_checked_against_the_list() {
        assert!(BureauCode::parse_compiled("440106").is_some());
        assert!(BureauCode::parse_compiled("000000").is_some());
        assert!(BureauCode::parse_compiled("440199").is_none(), "well-formed but not a region");
        assert!(BureauCode::parse_compiled("44010").is_none());
        assert!(BureauCode::parse_compiled("4401066").is_none());
        assert!(BureauCode::parse_compiled("44O106").is_none());
        assert!(BureauCode::parse_compiled("+44106").is_none());
        assert_eq!(NATIONAL.to_string(), "000000");
        assert_eq!(code("110105").to_string(), "110105");
    }
}
