//! The bureau tree: every market-regulation bureau is keyed by its 6-digit GB/T 2260 region code,
//! and bureaus form the administrative tree national → province → prefecture → county.
//!
//! The tree is static reference data compiled into the binary (`cluster/ledger/data/regions.csv`), so
//! every replica sees the same tree and the ledger may consult it inside `apply`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// A bureau, identified by its 6-digit region code (`440106`). `000000` is the national bureau.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BureauCode(u32);

/// The national bureau, root of the tree. This is a platform convention, not a GB/T 2260 code.
pub const NATIONAL: BureauCode = BureauCode(0);

/// The region codes have six decimal digits.
const REGION_CODE_DIGITS: usize = 6;

impl BureauCode {
    /// Parses a code of exactly six ASCII digits. It does not check that the region exists;
    /// use [`Regions::get`] for that.
    pub fn parse_digits(text: &str) -> Option<BureauCode> {
        if text.len() != REGION_CODE_DIGITS || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(BureauCode)
    }

    /// Parses a code and checks that it names a real region (or the national bureau).
    pub fn parse_known(text: &str) -> Option<BureauCode> {
        BureauCode::parse_digits(text).filter(|code| Regions::get().contains(*code))
    }

    pub fn as_u32(self) -> u32 {
        self.0
    }

    /// The code of `as_u32`'s number, when it names a real region (or the national bureau).
    pub fn known(number: u32) -> Option<BureauCode> {
        Some(BureauCode(number)).filter(|code| Regions::get().contains(*code))
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionLevel {
    National,
    Province,
    Prefecture,
    County,
}

#[derive(Clone, Debug)]
pub struct Region {
    pub code: BureauCode,
    pub name: &'static str,
    pub level: RegionLevel,
    /// `None` only for the national bureau.
    pub parent: Option<BureauCode>,
}

/// The whole region list, loaded once from the embedded CSV.
pub struct Regions {
    by_code: BTreeMap<BureauCode, Region>,
}

const REGIONS_CSV: &str = include_str!("../data/regions.csv");

/// Number of data rows in `regions.csv`; asserted on load so a truncated copy cannot slip in.
const REGION_ROWS: usize = 3_211;

/// The tree is at most four levels deep, so any upward walk ends within this many steps.
const TREE_DEPTH_MAX: usize = 4;

impl Regions {
    pub fn get() -> &'static Regions {
        static REGIONS: OnceLock<Regions> = OnceLock::new();
        REGIONS.get_or_init(|| Regions::parse(REGIONS_CSV))
    }

    fn parse(csv: &'static str) -> Regions {
        let mut by_code = BTreeMap::new();
        for line in csv.lines().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 4, "regions.csv row has four fields: {line}");
            let code = BureauCode::parse_digits(fields[0]).expect("regions.csv codes are 6 digits");
            let level = match fields[2] {
                "national" => RegionLevel::National,
                "province" => RegionLevel::Province,
                "prefecture" => RegionLevel::Prefecture,
                "county" => RegionLevel::County,
                other => panic!("regions.csv has an unknown level {other}"),
            };
            let parent = if fields[3].is_empty() {
                None
            } else {
                let parent = BureauCode::parse_digits(fields[3]).expect("parent codes are 6 digits");
                assert!(by_code.contains_key(&parent), "parents come before children in regions.csv");
                Some(parent)
            };
            by_code.insert(code, Region { code, name: fields[1], level, parent });
        }
        assert_eq!(by_code.len(), REGION_ROWS, "regions.csv is complete");
        Regions { by_code }
    }

    pub fn contains(&self, code: BureauCode) -> bool {
        self.by_code.contains_key(&code)
    }

    pub fn region(&self, code: BureauCode) -> Option<&Region> {
        self.by_code.get(&code)
    }

    pub fn name(&self, code: BureauCode) -> Option<&'static str> {
        self.by_code.get(&code).map(|region| region.name)
    }

    /// The bureau directly above `code`; `None` for the national bureau or an unknown code.
    pub fn parent(&self, code: BureauCode) -> Option<BureauCode> {
        self.by_code.get(&code).and_then(|region| region.parent)
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

    /// True when `code` is `ancestor` itself or lies below it in the tree.
    pub fn is_within(&self, code: BureauCode, ancestor: BureauCode) -> bool {
        let mut current = Some(code);
        for _ in 0..=TREE_DEPTH_MAX {
            match current {
                Some(c) if c == ancestor => return true,
                Some(c) => current = self.by_code.get(&c).and_then(|region| region.parent),
                None => return false,
            }
        }
        unreachable!("the region tree is at most {TREE_DEPTH_MAX} levels deep")
    }

    /// The direct children of a bureau, in code order.
    pub fn children(&self, parent: BureauCode) -> impl Iterator<Item = &Region> {
        self.by_code.values().filter(move |region| region.parent == Some(parent))
    }

    /// Every bureau in the subtree of `root`, `root` included, in code order.
    pub fn subtree(&self, root: BureauCode) -> impl Iterator<Item = &Region> {
        self.by_code.values().filter(move |region| self.is_within(region.code, root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> BureauCode {
        BureauCode::parse_known(text).expect(text)
    }

    #[test]
    fn tree_has_the_documented_shape() {
        let regions = Regions::get();
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
        assert!(BureauCode::parse_known("440106").is_some());
        assert!(BureauCode::parse_known("000000").is_some());
        assert!(BureauCode::parse_known("440199").is_none(), "well-formed but not a region");
        assert!(BureauCode::parse_known("44010").is_none());
        assert!(BureauCode::parse_known("4401066").is_none());
        assert!(BureauCode::parse_known("44O106").is_none());
        assert!(BureauCode::parse_known("+44106").is_none());
        assert_eq!(NATIONAL.to_string(), "000000");
        assert_eq!(code("110105").to_string(), "110105");
    }
}
