//! A bureau's inspector roster as CSV (执法人员名录), enrolled in one command: a county
//! enrolling its enforcement staff should not type them in one by one.
//!
//! ```text
//! id,name,bureau,station,expertise,qualified
//! TH0001,张三,440106,石牌市场监管所,food;pricing,true
//! TH0002,李四,440106,,pricing,是
//! ```
//!
//! `station` is empty for the bureau's own office (局机关); `expertise` tags are separated by
//! `;`; `qualified` is `true`/`false` (or `是`/`否`, `1`/`0`). The file is what Excel writes:
//! UTF-8 (with or without a byte-order mark) or GBK (a Chinese Windows' "CSV"), fields quoted
//! when they hold `,` or `"`. Every row is checked here and again by the ledger; a file with any
//! bad row is refused whole, with the lines at fault.

use ledger::campaign::{check_inspector, Inspector, INSPECTORS_PER_ENROLMENT_MAX};

/// The header a roster file starts with.
pub const ROSTER_HEADER: &str = "id,name,bureau,station,expertise,qualified";
/// Errors named in a refusal at most; the count covers all of them.
const ERRORS_LISTED_MAX: usize = 5;

/// Why a roster was refused: every bad line (the first few named), nothing enrolled.
#[derive(Debug, PartialEq, Eq)]
pub struct RosterError {
    pub bad_lines: usize,
    pub errors: Vec<String>,
}

impl std::fmt::Display for RosterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bad lines, nothing enrolled; {}", self.bad_lines, self.errors.join("; "))
    }
}

fn refusal(message: impl Into<String>) -> RosterError {
    RosterError { bad_lines: 1, errors: vec![message.into()] }
}

/// The file as text: UTF-8 when it is, else GBK (strictly: a byte neither can read refuses it).
fn decode(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, RosterError> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(std::borrow::Cow::Borrowed(text.strip_prefix('\u{feff}').unwrap_or(text)));
    }
    encoding_rs::GBK
        .decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or_else(|| refusal("the file is neither UTF-8 nor GBK"))
}

/// The inspectors of a roster file, in file order, or every line that is wrong.
/// `regions` is the group's table, which the bureau codes must be in.
pub fn parse(regions: &ledger::Regions, bytes: &[u8]) -> Result<Vec<Inspector>, RosterError> {
    let text = decode(bytes)?;
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let mut records = reader.records();
    let header_ok = match records.next() {
        Some(Ok(header)) => header.iter().eq(ROSTER_HEADER.split(',')),
        _ => false,
    };
    if !header_ok {
        return Err(refusal(format!("line 1: the header must be `{ROSTER_HEADER}`")));
    }
    let mut inspectors = Vec::new();
    let mut errors = Vec::new();
    let mut bad_lines = 0;
    for record in records {
        let outcome = match record {
            Ok(record) if record.iter().all(str::is_empty) => continue,
            Ok(record) => row(regions, &record).map_err(|reason| (line_of(record.position()), reason)),
            Err(error) => Err((line_of(error.position()), format!("not CSV: {error}"))),
        };
        match outcome {
            Ok(inspector) => inspectors.push(inspector),
            Err((line, reason)) => {
                bad_lines += 1;
                if errors.len() < ERRORS_LISTED_MAX {
                    errors.push(format!("line {line}: {reason}"));
                }
            }
        }
    }
    if bad_lines > 0 {
        return Err(RosterError { bad_lines, errors });
    }
    if inspectors.is_empty() || inspectors.len() > INSPECTORS_PER_ENROLMENT_MAX {
        return Err(refusal(format!(
            "a roster lists 1 to {INSPECTORS_PER_ENROLMENT_MAX} inspectors, this one {}",
            inspectors.len()
        )));
    }
    Ok(inspectors)
}

/// The line a record starts on, as a person counts them (a quoted field may span lines).
fn line_of(position: Option<&csv::Position>) -> String {
    position.map_or_else(|| "?".to_owned(), |p| p.line().to_string())
}

fn row(regions: &ledger::Regions, record: &csv::StringRecord) -> Result<Inspector, String> {
    let fields: Vec<&str> = record.iter().collect();
    let [id, name, bureau, station, expertise, qualified] = fields[..] else {
        return Err(format!("6 fields expected, found {}", fields.len()));
    };
    let bureau = regions.parse_known(bureau).ok_or_else(|| format!("bureau {bureau:?} is not a region code"))?;
    let qualified = match qualified {
        "true" | "1" | "是" => true,
        "false" | "0" | "否" => false,
        other => return Err(format!("qualified must be true or false, not {other:?}")),
    };
    let inspector = Inspector {
        id: id.to_owned(),
        name: name.to_owned(),
        bureau,
        station: (!station.is_empty()).then(|| station.to_owned()),
        expertise: expertise.split(';').map(str::trim).filter(|tag| !tag.is_empty()).map(str::to_owned).collect(),
        qualified,
        active: true,
        enrolled_at_ms: 0,
        retired_at_ms: None,
    };
    check_inspector(regions, &inspector).map_err(|rejection| rejection.to_string())?;
    Ok(inspector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roster_gives_its_inspectors_in_order() {
        let file = format!(
            "\u{feff}{ROSTER_HEADER}\r\nTH0001,张三,440106,石牌市场监管所,food;pricing,true\r\n\r\nTH0002,李四,440106,,pricing,否\r\n"
        );
        let inspectors = parse(ledger::Regions::compiled(), file.as_bytes()).expect("a good roster");
        assert_eq!(inspectors.len(), 2);
        assert_eq!(inspectors[0].id, "TH0001");
        assert_eq!(inspectors[0].station.as_deref(), Some("石牌市场监管所"));
        assert_eq!(inspectors[0].expertise, ["food", "pricing"]);
        assert!(inspectors[0].qualified);
        assert_eq!((inspectors[1].station.as_deref(), inspectors[1].qualified), (None, false));
    }

    #[test]
    fn every_bad_line_is_named_and_nothing_is_returned() {
        let file = format!(
            "{ROSTER_HEADER}\nTH0001,张三,440106,,food,true\nTH0002,李四,999999,,food,true\n\
             TH0003,王五,440106,,food\nTH 4,赵六,440106,,food,true\nTH0005,\"钱七,\",440106,,food,x,y\nTH0006,孙八,440106,,food,maybe\n"
        );
        let error = parse(ledger::Regions::compiled(), file.as_bytes()).expect_err("bad lines");
        assert_eq!(error.bad_lines, 5);
        assert!(error.errors[0].starts_with("line 3: bureau"), "{error}");
        assert!(error.errors[1].starts_with("line 4: 6 fields"), "{error}");
        assert!(error.errors[2].starts_with("line 5:") && error.errors[2].contains("id"), "{error}");
        assert!(error.errors[3].starts_with("line 6: 6 fields expected, found 7"), "{error}");
        assert!(error.errors[4].starts_with("line 7: qualified"), "{error}");
    }

    #[test]
    fn what_excel_writes_is_read_quoted_fields_and_gbk() {
        // Excel quotes a field with a comma or a quote, and doubles the quote.
        let file = format!(
            "{ROSTER_HEADER}\r\n\"TH0001\",\"张三\",440106,\"石牌所（东区,北区）\",\"food;pricing\",是\r\n\
             TH0002,\"李\"\"四\"\"\",440106,,pricing,0\r\n"
        );
        let inspectors = parse(ledger::Regions::compiled(), file.as_bytes()).expect("a quoted roster");
        assert_eq!(inspectors[0].station.as_deref(), Some("石牌所（东区,北区）"));
        assert_eq!(inspectors[0].expertise, ["food", "pricing"]);
        assert_eq!(inspectors[1].name, "李\"四\"");
        // The same roster saved as GBK ("CSV (逗号分隔)" on a Chinese Windows) reads the same.
        let (gbk, _, unmappable) = encoding_rs::GBK.encode(&file);
        assert!(!unmappable && std::str::from_utf8(&gbk).is_err(), "a real GBK file");
        assert_eq!(parse(ledger::Regions::compiled(), &gbk).expect("a GBK roster"), inspectors);
    }

    #[test]
    fn a_file_without_the_header_or_rows_or_with_too_many_is_refused() {
        assert!(parse(ledger::Regions::compiled(), b"TH0001,x,440106,,food,true\n").unwrap_err().errors[0]
            .contains("header"));
        assert!(parse(ledger::Regions::compiled(), ROSTER_HEADER.as_bytes()).unwrap_err().errors[0].contains("1 to"));
        assert!(
            parse(ledger::Regions::compiled(), b"\xff\xfe").unwrap_err().errors[0].contains("neither UTF-8 nor GBK")
        );
        let mut big = format!("{ROSTER_HEADER}\n");
        for n in 0..=INSPECTORS_PER_ENROLMENT_MAX {
            big.push_str(&format!("T{n},某某,440106,,food,true\n"));
        }
        assert!(parse(ledger::Regions::compiled(), big.as_bytes()).unwrap_err().errors[0].contains("1 to"));
    }
}
