//! Bulk phone CSV (Zoom Phone-style): streaming row parsing, and the one reading of a row as
//! a change of one user's phone profile ([`row_fields`]).
//!
//! Zoom's phone upload replaces a user's whole phone profile, so a row that only lists a new desk
//! phone silently drops the user's number and calling plan. Here every field of a row keeps
//! three states: its column is absent from the file, present but empty, or holds a value.
//! [`row_fields`] turns a row into the change for one user:
//!
//! | column…             | `merge` (default) | `replace` (Zoom's behaviour) |
//! |---------------------|-------------------|------------------------------|
//! | absent from file    | keep              | clear                        |
//! | present, empty cell | keep              | clear                        |
//! | holds a value       | set               | set                          |
//!
//! In `merge`, the desk phone slots a row names are set and the others kept; in `replace` the
//! row is the user's complete list. An empty cell keeps in `merge` because spreadsheets leave
//! blanks far more often than people mean "delete". A user holds one direct number. The
//! import and its dry run both run the resulting change through the provisioning pipeline
//! (the dry run in a transaction it rolls back), so a dry run reports exactly what the import
//! then does, removals first.
//!
//! Parsing is streaming: [`PhoneCsvReader`] yields one row at a time from any `Read`, and a bad
//! row is reported with its line number without stopping the rows after it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::accounts::normalize_email;
use super::catalog::CallingPlan;
use super::csv_lines::CsvLines;
use super::field::Field;
use super::phone::{normalize_e164, DeskPhone, ExtensionRequest, PhoneFields, SiteCode};
pub use super::users::RowError;

/// Desk phones per user the file format allows.
pub const MAX_DESK_PHONES: u8 = 9;

// ---------------------------------------------------------------------------------------------
// Cell values
// ---------------------------------------------------------------------------------------------

/// One cell of a row, keeping the difference between "no such column" and "empty cell".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Cell<T> {
    /// The file has no such column.
    #[default]
    Absent,
    /// The column exists but this row's cell is blank.
    Empty,
    Value(T),
}

impl<T> Cell<T> {
    pub fn value(&self) -> Option<&T> {
        match self {
            Cell::Value(value) => Some(value),
            Cell::Absent | Cell::Empty => None,
        }
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, Cell::Absent)
    }
}

/// A desk phone's MAC address, shown as `AA:BB:CC:DD:EE:FF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddress([u8; 6]);

/// Why a MAC address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a MAC address (12 hex digits: AA:BB:CC:DD:EE:FF, AA-BB-CC-DD-EE-FF, AABB.CCDD.EEFF or AABBCCDDEEFF)"
)]
pub struct MacError(pub String);

impl MacAddress {
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl FromStr for MacAddress {
    type Err = MacError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let error = || MacError(raw.to_owned());
        let text = raw.trim().as_bytes();
        let mut hex = [0u8; 12];
        let mut n = 0;
        let separator_at: &[usize] = match text.len() {
            12 => &[],
            14 => &[4, 9],
            17 => &[2, 5, 8, 11, 14],
            _ => return Err(error()),
        };
        let separator = separator_at.first().and_then(|&i| text.get(i)).copied();
        match (text.len(), separator) {
            (12, None) | (14, Some(b'.')) | (17, Some(b':' | b'-')) => {}
            _ => return Err(error()),
        }
        for (i, &byte) in text.iter().enumerate() {
            if separator_at.contains(&i) {
                if Some(byte) != separator {
                    return Err(error());
                }
                continue;
            }
            let digit = match byte {
                b'0'..=b'9' => byte - b'0',
                b'a'..=b'f' => byte - b'a' + 10,
                b'A'..=b'F' => byte - b'A' + 10,
                _ => return Err(error()),
            };
            let slot = hex.get_mut(n).ok_or_else(error)?;
            *slot = digit;
            n += 1;
        }
        if n != 12 {
            return Err(error());
        }
        let mut octets = [0u8; 6];
        for (octet, pair) in octets.iter_mut().zip(hex.chunks_exact(2)) {
            if let [high, low] = pair {
                *octet = (high << 4) | low;
            }
        }
        if octets == [0; 6] || octets == [0xFF; 6] {
            return Err(error());
        }
        Ok(MacAddress(octets))
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02X}:{b:02X}:{c:02X}:{d:02X}:{e:02X}:{g:02X}")
    }
}

impl Serialize for MacAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// Whom outgoing calls show as the caller.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboundCallerId {
    /// An E.164 number.
    Number(String),
    Hidden,
}

impl fmt::Display for OutboundCallerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutboundCallerId::Number(number) => f.write_str(number),
            OutboundCallerId::Hidden => f.write_str("hidden"),
        }
    }
}

/// A phone user's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneStatus {
    Active,
    Inactive,
}

impl fmt::Display for PhoneStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PhoneStatus::Active => "active",
            PhoneStatus::Inactive => "inactive",
        })
    }
}

/// Reads the yes/no spellings spreadsheets use.
pub fn parse_flag(raw: &str) -> Option<bool> {
    let text = raw.trim();
    const YES: [&str; 9] = ["yes", "y", "true", "t", "1", "on", "enabled", "enable", "active"];
    const NO: [&str; 9] = ["no", "n", "false", "f", "0", "off", "disabled", "disable", "inactive"];
    if YES.iter().any(|word| text.eq_ignore_ascii_case(word)) {
        Some(true)
    } else if NO.iter().any(|word| text.eq_ignore_ascii_case(word)) {
        Some(false)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

/// The four columns of one desk phone slot (1 to 9).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeskPhoneColumns {
    pub slot: u8,
    pub brand: Cell<String>,
    pub model: Cell<String>,
    pub mac: Cell<MacAddress>,
    pub provision_template: Cell<String>,
}

/// One valid data row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneCsvRow {
    /// Line of the file the row starts on (the header is line 1).
    pub line: u64,
    /// Lower-cased.
    pub email: String,
    pub package: Cell<String>,
    pub site_code: Cell<SiteCode>,
    pub site_name: Cell<String>,
    pub user_template: Cell<String>,
    pub extension: Cell<ExtensionRequest>,
    /// E.164; a cell may list several numbers separated by `;` or `,`.
    pub phone_numbers: Cell<BTreeSet<String>>,
    pub calling_plan: Cell<CallingPlan>,
    pub outbound_caller_id: Cell<OutboundCallerId>,
    pub allow_caller_id_change: Cell<bool>,
    pub sms: Cell<bool>,
    pub status: Cell<PhoneStatus>,
    /// One entry per desk phone slot that has at least one column in the file, by slot.
    pub desk_phones: Vec<DeskPhoneColumns>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeskPart {
    Brand,
    Model,
    Mac,
    Template,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Email,
    Package,
    SiteCode,
    SiteName,
    UserTemplate,
    Extension,
    PhoneNumber,
    CallingPlan,
    OutboundCallerId,
    AllowCallerIdChange,
    Sms,
    Status,
    Desk(u8, DeskPart),
}

/// Lower-case, `_`/`-` read as spaces, runs of spaces folded, a leading BOM dropped.
fn header_key(raw: &str) -> String {
    let raw = raw.trim_start_matches('\u{feff}');
    let mut key = String::with_capacity(raw.len());
    for word in raw.split(|c: char| c.is_whitespace() || c == '_' || c == '-').filter(|word| !word.is_empty()) {
        if !key.is_empty() {
            key.push(' ');
        }
        key.extend(word.chars().flat_map(char::to_lowercase));
    }
    key
}

/// The column a header names: `Ok(None)` for columns we do not know (they are ignored).
fn column_for(header: &str) -> Result<Option<Column>, String> {
    let key = header_key(header);
    let column = match key.as_str() {
        "email" | "email address" | "user email" => Column::Email,
        "package" => Column::Package,
        "site code" => Column::SiteCode,
        "site name" | "site" => Column::SiteName,
        "user template" | "template" => Column::UserTemplate,
        "extension number" | "extension" => Column::Extension,
        "phone number" | "phone numbers" | "direct number" | "number" => Column::PhoneNumber,
        "calling plan" | "calling plans" => Column::CallingPlan,
        "outbound caller id" | "set outbound caller id" => Column::OutboundCallerId,
        "allow user to change outbound caller id" | "allow user to change caller id" => Column::AllowCallerIdChange,
        "sms" | "sms enablement" | "sms enabled" => Column::Sms,
        "user status" | "status" => Column::Status,
        _ => return desk_column(&key),
    };
    Ok(Some(column))
}

fn desk_column(key: &str) -> Result<Option<Column>, String> {
    let Some(rest) = key.strip_prefix("desk phone ") else {
        return Ok(None);
    };
    let (part, slot) = match rest.rsplit_once(' ') {
        Some((part, slot)) if slot.bytes().all(|b| b.is_ascii_digit()) => (part, slot),
        _ => return Ok(None),
    };
    let part = match part {
        "brand" => DeskPart::Brand,
        "model" => DeskPart::Model,
        "mac address" | "mac" => DeskPart::Mac,
        "provision template" | "provisioning template" | "template" => DeskPart::Template,
        _ => return Ok(None),
    };
    match slot.parse::<u8>() {
        Ok(n) if (1..=MAX_DESK_PHONES).contains(&n) => Ok(Some(Column::Desk(n, part))),
        _ => Err(format!("desk phone columns are numbered 1 to {MAX_DESK_PHONES}")),
    }
}

/// Streams [`PhoneCsvRow`]s out of a CSV file, one per data row.
///
/// Each item is a valid row or every problem found on that row. Rows whose cells are all blank
/// are skipped. A read failure of the underlying input ends the stream after being reported.
pub struct PhoneCsvReader<R: Read> {
    reader: csv::Reader<CsvLines<R>>,
    headers: Vec<String>,
    columns: Vec<Option<Column>>,
    slots: Vec<u8>,
    ignored: Vec<String>,
    record: csv::StringRecord,
    done: bool,
}

impl<R: Read> fmt::Debug for PhoneCsvReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhoneCsvReader")
            .field("headers", &self.headers)
            .field("ignored", &self.ignored)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<R: Read> PhoneCsvReader<R> {
    /// Reads and checks the header row: column names are case-insensitive and
    /// whitespace-tolerant, `Email` is required, a column may appear only once, unknown columns
    /// are ignored (see [`PhoneCsvReader::ignored_columns`]).
    pub fn new(input: R) -> Result<Self, Vec<RowError>> {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(CsvLines::new(input));
        let header_record = reader
            .headers()
            .map_err(|error| vec![RowError::new(1, None, format!("cannot read the header: {error}"))])?
            .clone();
        let headers: Vec<String> =
            header_record.iter().map(|h| h.trim_start_matches('\u{feff}').trim().to_owned()).collect();
        if headers.iter().all(String::is_empty) {
            return Err(vec![RowError::new(1, None, "the file has no header row")]);
        }

        let mut errors = Vec::new();
        let mut columns = Vec::with_capacity(headers.len());
        let mut ignored = Vec::new();
        let mut slots = BTreeSet::new();
        for header in &headers {
            match column_for(header) {
                Ok(Some(column)) => {
                    if columns.contains(&Some(column)) {
                        errors.push(RowError::new(1, Some(header), "duplicate column"));
                    }
                    if let Column::Desk(slot, _) = column {
                        slots.insert(slot);
                    }
                    columns.push(Some(column));
                }
                Ok(None) => {
                    if !header.is_empty() {
                        ignored.push(header.clone());
                    }
                    columns.push(None);
                }
                Err(message) => {
                    errors.push(RowError::new(1, Some(header), message));
                    columns.push(None);
                }
            }
        }
        if !columns.contains(&Some(Column::Email)) {
            errors.push(RowError::new(1, None, "the `Email` column is required"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(PhoneCsvReader {
            reader,
            headers,
            columns,
            slots: slots.into_iter().collect(),
            ignored,
            record: csv::StringRecord::new(),
            done: false,
        })
    }

    /// Header cells that named no known column.
    pub fn ignored_columns(&self) -> &[String] {
        &self.ignored
    }

    /// The header cells as written (trimmed).
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    fn parse_row(&self, line: u64) -> Result<PhoneCsvRow, Vec<RowError>> {
        let mut row = PhoneCsvRow {
            line,
            desk_phones: self
                .slots
                .iter()
                .map(|&slot| DeskPhoneColumns { slot, ..DeskPhoneColumns::default() })
                .collect(),
            ..PhoneCsvRow::default()
        };
        let mut errors = Vec::new();
        let mut email = None;
        let mut unreadable_macs = Vec::new();
        for (index, column) in self.columns.iter().enumerate() {
            let Some(column) = *column else { continue };
            let header = self.headers.get(index).map_or("", String::as_str);
            let cell = self.record.get(index).unwrap_or_default().trim();
            let mut fail = |message: String| errors.push(RowError::new(line, Some(header), message));
            match column {
                Column::Email => {
                    if cell.is_empty() {
                        fail("an email is required".to_owned());
                    } else {
                        match normalize_email(cell) {
                            Ok(e) => email = Some(e),
                            Err(_) => fail(format!("`{cell}` is not a valid email address")),
                        }
                    }
                }
                Column::Package => row.package = text(cell),
                Column::SiteName => row.site_name = text(cell),
                Column::UserTemplate => row.user_template = text(cell),
                Column::SiteCode => row.site_code = parse(cell, &mut fail, |c| c.parse::<SiteCode>()),
                Column::Extension => {
                    row.extension = parse(cell, &mut fail, |c| c.parse::<ExtensionRequest>());
                }
                Column::PhoneNumber => row.phone_numbers = parse(cell, &mut fail, parse_numbers),
                Column::CallingPlan => {
                    row.calling_plan = parse(cell, &mut fail, |c| c.parse::<CallingPlan>());
                }
                Column::OutboundCallerId => {
                    row.outbound_caller_id = parse(cell, &mut fail, parse_caller_id);
                }
                Column::AllowCallerIdChange => {
                    row.allow_caller_id_change = parse(cell, &mut fail, flag);
                }
                Column::Sms => row.sms = parse(cell, &mut fail, flag),
                Column::Status => {
                    row.status = parse(cell, &mut fail, |c| {
                        flag(c).map(|on| if on { PhoneStatus::Active } else { PhoneStatus::Inactive })
                    });
                }
                Column::Desk(slot, part) => {
                    let Some(desk) = row.desk_phones.iter_mut().find(|d| d.slot == slot) else {
                        continue;
                    };
                    match part {
                        DeskPart::Brand => desk.brand = text(cell),
                        DeskPart::Model => desk.model = text(cell),
                        DeskPart::Template => desk.provision_template = text(cell),
                        DeskPart::Mac => {
                            desk.mac = parse(cell, &mut fail, |c| c.parse::<MacAddress>());
                            if !cell.is_empty() && desk.mac.value().is_none() {
                                unreadable_macs.push(slot);
                            }
                        }
                    }
                }
            }
        }

        let mut seen = BTreeSet::new();
        for desk in &row.desk_phones {
            let described = desk.brand.value().is_some()
                || desk.model.value().is_some()
                || desk.provision_template.value().is_some();
            match desk.mac.value() {
                Some(mac) if !seen.insert(*mac) => {
                    errors.push(RowError::new(
                        line,
                        None,
                        format!("desk phone {}: MAC address {mac} is listed twice", desk.slot),
                    ));
                }
                Some(_) => {}
                // An unreadable MAC address has already been reported.
                None if described && !unreadable_macs.contains(&desk.slot) => {
                    errors.push(RowError::new(
                        line,
                        None,
                        format!("desk phone {}: a MAC address is required", desk.slot),
                    ));
                }
                None => {}
            }
        }

        match email {
            Some(email) if errors.is_empty() => {
                row.email = email;
                Ok(row)
            }
            _ => Err(errors),
        }
    }
}

fn text(cell: &str) -> Cell<String> {
    if cell.is_empty() {
        Cell::Empty
    } else {
        Cell::Value(cell.to_owned())
    }
}

fn parse<T, E: fmt::Display>(
    cell: &str,
    fail: &mut impl FnMut(String),
    read: impl FnOnce(&str) -> Result<T, E>,
) -> Cell<T> {
    if cell.is_empty() {
        return Cell::Empty;
    }
    match read(cell) {
        Ok(value) => Cell::Value(value),
        Err(error) => {
            fail(error.to_string());
            Cell::Empty
        }
    }
}

fn flag(cell: &str) -> Result<bool, String> {
    parse_flag(cell).ok_or_else(|| {
        format!("`{cell}` is not a yes/no value (Yes/No, True/False, Enabled/Disabled, Active/Inactive)")
    })
}

fn parse_numbers(cell: &str) -> Result<BTreeSet<String>, String> {
    let mut numbers = BTreeSet::new();
    for part in cell.split([';', ',']).map(str::trim).filter(|p| !p.is_empty()) {
        let number = normalize_e164(part).map_err(|error| format!("phone number `{part}`: {error}"))?;
        numbers.insert(number);
    }
    if numbers.is_empty() {
        return Err("no phone number in the cell".to_owned());
    }
    Ok(numbers)
}

fn parse_caller_id(cell: &str) -> Result<OutboundCallerId, String> {
    const HIDDEN: [&str; 5] = ["hide", "hidden", "hide caller id", "anonymous", "private"];
    if HIDDEN.iter().any(|word| cell.eq_ignore_ascii_case(word)) {
        return Ok(OutboundCallerId::Hidden);
    }
    normalize_e164(cell)
        .map(OutboundCallerId::Number)
        .map_err(|error| format!("outbound caller ID `{cell}`: {error} (or `Hide`)"))
}

impl<R: Read> Iterator for PhoneCsvReader<R> {
    type Item = Result<PhoneCsvRow, Vec<RowError>>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let mut record = std::mem::take(&mut self.record);
            let read = self.reader.read_record(&mut record);
            let line = record.position().map_or_else(|| self.reader.position().line(), csv::Position::line);
            self.record = record;
            match read {
                Ok(false) => self.done = true,
                Ok(true) => {
                    if self.record.iter().all(|cell| cell.trim().is_empty()) {
                        continue;
                    }
                    if self.record.iter().any(|cell| cell.contains('\0')) {
                        return Some(Err(vec![RowError::new(
                            line,
                            None,
                            "the row contains a NUL character, which no field may hold",
                        )]));
                    }
                    if self.record.len() != self.headers.len() {
                        return Some(Err(vec![RowError::new(
                            line,
                            None,
                            format!(
                                "the row has {} cells but the header has {}",
                                self.record.len(),
                                self.headers.len()
                            ),
                        )]));
                    }
                    return Some(self.parse_row(line));
                }
                Err(error) => {
                    let line = error.position().map_or(line, csv::Position::line);
                    if matches!(error.kind(), csv::ErrorKind::Io(_)) {
                        self.done = true;
                    }
                    return Some(Err(vec![RowError::new(line, None, error.to_string())]));
                }
            }
        }
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a row as a change
// ---------------------------------------------------------------------------------------------

/// How a row combines with the user's current phone profile (see the module table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    #[default]
    Merge,
    Replace,
}

impl ImportMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportMode::Merge => "merge",
            ImportMode::Replace => "replace",
        }
    }
}

fn field<T, U>(cell: &Cell<T>, mode: ImportMode, map: impl Fn(&T) -> U) -> Field<U> {
    match (cell, mode) {
        (Cell::Value(v), _) => Field::Set(map(v)),
        (_, ImportMode::Merge) => Field::Keep,
        (Cell::Absent | Cell::Empty, ImportMode::Replace) => Field::Clear,
    }
}

/// The phone change one row asks for, under a mode: the one reading of a row, which the
/// import hands to the provisioning pipeline and the dry run hands to the same pipeline
/// in a transaction it rolls back. `current_desk` are the user's desk phones (merge keeps
/// the slots a row does not name).
pub fn row_fields(row: &PhoneCsvRow, mode: ImportMode, current_desk: &[DeskPhone]) -> Result<PhoneFields, RowError> {
    let err = |column: &str, message: String| RowError::new(row.line, Some(column), message);
    let site = match (&row.site_code, &row.site_name) {
        (Cell::Value(code), _) => Field::Set(code.as_str().to_owned()),
        (_, Cell::Value(name)) => Field::Set(name.clone()),
        _ if mode == ImportMode::Replace => Field::Clear,
        _ => Field::Keep,
    };
    let number = match &row.phone_numbers {
        Cell::Value(set) if set.len() > 1 => {
            return Err(err("Phone Number", format!("{} numbers given; a user holds one direct number", set.len())))
        }
        Cell::Value(set) => match set.iter().next() {
            Some(n) => Field::Set(n.clone()),
            None => Field::Keep,
        },
        other => field(other, mode, |_: &BTreeSet<String>| String::new()),
    };
    let desk_phones = if row.desk_phones.is_empty() {
        (mode == ImportMode::Replace).then(Vec::new)
    } else {
        let mut list: BTreeMap<u8, DeskPhone> = if mode == ImportMode::Merge {
            current_desk.iter().map(|d| (d.slot, d.clone())).collect()
        } else {
            BTreeMap::new()
        };
        for cols in &row.desk_phones {
            match &cols.mac {
                Cell::Value(mac) => {
                    let mac = mac.to_string();
                    // A phone moves to the slot the row names.
                    list.retain(|_, d| d.mac_address != mac);
                    list.insert(
                        cols.slot,
                        DeskPhone {
                            slot: cols.slot,
                            brand: cols.brand.value().cloned(),
                            model: cols.model.value().cloned(),
                            mac_address: mac,
                            provision_template: cols.provision_template.value().cloned(),
                        },
                    );
                }
                _ if mode == ImportMode::Replace => {
                    list.remove(&cols.slot);
                }
                _ => {}
            }
        }
        Some(list.into_values().collect())
    };
    Ok(PhoneFields {
        site,
        extension: field(&row.extension, mode, |e: &ExtensionRequest| match e {
            ExtensionRequest::NextFree => 0,
            ExtensionRequest::Exact(n) => *n,
        }),
        number,
        calling_plan: field(&row.calling_plan, mode, |p: &CallingPlan| *p),
        roles: None,
        outbound_caller_id: field(&row.outbound_caller_id, mode, |c: &OutboundCallerId| c.to_string()),
        sms_enabled: field(&row.sms, mode, |b: &bool| *b),
        status: field(&row.status, mode, |s: &PhoneStatus| s.to_string()),
        package: field(&row.package, mode, |p: &String| p.clone()),
        user_template: field(&row.user_template, mode, |p: &String| p.clone()),
        allow_caller_id_change: field(&row.allow_caller_id_change, mode, |b: &bool| *b),
        desk_phones,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rows(csv: &str) -> Vec<Result<PhoneCsvRow, Vec<RowError>>> {
        PhoneCsvReader::new(csv.as_bytes()).unwrap().collect()
    }

    fn one_row(csv: &str) -> PhoneCsvRow {
        let mut all = rows(csv);
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0).unwrap()
    }

    fn header_errors(csv: &str) -> Vec<RowError> {
        PhoneCsvReader::new(csv.as_bytes()).unwrap_err()
    }

    #[test]
    fn mac_addresses_table() {
        let ok = [
            ("AA:BB:CC:DD:EE:01", "AA:BB:CC:DD:EE:01"),
            ("aa:bb:cc:dd:ee:01", "AA:BB:CC:DD:EE:01"),
            ("AA-BB-CC-DD-EE-01", "AA:BB:CC:DD:EE:01"),
            ("aabb.ccdd.ee01", "AA:BB:CC:DD:EE:01"),
            ("AABBCCDDEE01", "AA:BB:CC:DD:EE:01"),
            (" 00:04:f2:12:34:56 ", "00:04:F2:12:34:56"),
        ];
        for (raw, want) in ok {
            assert_eq!(raw.parse::<MacAddress>().unwrap().to_string(), want, "{raw}");
        }
        let bad = [
            "",
            "AA:BB:CC:DD:EE",
            "AA:BB:CC:DD:EE:0G",
            "AA:BB-CC:DD:EE:01",
            "AA.BB.CC.DD.EE.01",
            "AABB:CCDD:EE01",
            "AABBCCDDEE011",
            "AA:BB:CC:DD:EE:01:02",
            "00:00:00:00:00:00",
            "ff:ff:ff:ff:ff:ff",
            "ÄA:BB:CC:DD:EE:01",
        ];
        for raw in bad {
            assert!(raw.parse::<MacAddress>().is_err(), "{raw}");
        }
    }

    #[test]
    fn flags_and_emails() {
        for yes in ["Yes", "TRUE", "enabled", "Active", "1", "on", "y"] {
            assert_eq!(parse_flag(yes), Some(true), "{yes}");
        }
        for no in ["No", "false", "Disabled", "INACTIVE", "0", "off", "N"] {
            assert_eq!(parse_flag(no), Some(false), "{no}");
        }
        assert_eq!(parse_flag("maybe"), None);
        for good in ["a@b.co", "first.last+tag@mail.example.com", "o'brien@x-y.org"] {
            assert!(normalize_email(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "@b.co",
            "a@",
            "a@b",
            "a@@b.co",
            "a@b..co",
            ".a@b.co",
            "a..b@c.co",
            "a b@c.co",
            "a@-b.co",
            "a@b.123",
            "é@b.co",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_are_case_and_space_insensitive() {
        let csv = "\u{feff} EMAIL ,site_code,  Extension   Number,phone-number,Calling Plan,SMS,User Status,Desk Phone MAC Address 2,Favourite Colour\n\
                   Ann@Example.com,12,0,+1 555-555-5555,200,Enabled,Active,aabb.ccdd.ee01,blue\n";
        let reader = PhoneCsvReader::new(csv.as_bytes()).unwrap();
        assert_eq!(reader.ignored_columns(), ["Favourite Colour"]);
        let row: Vec<_> = reader.collect();
        let row = row[0].clone().unwrap();
        assert_eq!(row.line, 2);
        assert_eq!(row.email, "ann@example.com");
        assert_eq!(row.site_code.value().unwrap().as_str(), "12");
        assert_eq!(row.extension, Cell::Value(ExtensionRequest::NextFree));
        assert_eq!(row.phone_numbers, Cell::Value(["+15555555555".to_owned()].into_iter().collect()));
        assert_eq!(row.calling_plan, Cell::Value(CallingPlan::RegionalUnlimited));
        assert_eq!(row.sms, Cell::Value(true));
        assert_eq!(row.status, Cell::Value(PhoneStatus::Active));
        assert_eq!(row.package, Cell::Absent);
        assert_eq!(row.desk_phones.len(), 1);
        assert_eq!(row.desk_phones[0].slot, 2);
        assert_eq!(row.desk_phones[0].brand, Cell::Absent);
        assert_eq!(row.desk_phones[0].mac.value().unwrap().to_string(), "AA:BB:CC:DD:EE:01");
    }

    #[test]
    fn header_problems_are_reported_together() {
        let errors = header_errors("Site Code,Site Code,Desk Phone Brand 10\n");
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "line 1, column `Site Code`: duplicate column",
                "line 1, column `Desk Phone Brand 10`: desk phone columns are numbered 1 to 9",
                "line 1: the `Email` column is required",
            ]
        );
        assert_eq!(header_errors("")[0].message, "the file has no header row");
    }

    #[test]
    fn absent_empty_and_value_are_distinct() {
        let row = one_row("Email,Package,Phone Number\nann@example.com,,+44 20 7946 0018\n");
        assert_eq!(row.package, Cell::Empty);
        assert!(row.phone_numbers.value().is_some());
        assert_eq!(row.calling_plan, Cell::Absent);
        assert!(row.calling_plan.is_absent());
    }

    #[test]
    fn bad_rows_are_reported_and_good_rows_continue() {
        let csv = "Email,Phone Number,Desk Phone Brand 1,Desk Phone MAC Address 1,SMS,Calling Plan\n\
                   ann@example.com,+1 555-555-5555,Polycom,AA:BB:CC:DD:EE:01,yes,Regional Metered\n\
                   not-an-email,555-5555,Yealink,,perhaps,Gold\n\
                   ,,,,,\n\
                   \"bob@example.com\",\"+44 20 7946 0018; +44 20 7946 0019\",,,No,1001\n\
                   carl@example.com,+1 555-555-5556\n\
                   dee@example.com,,Yealink,zz,,\n\
                   eve@example.com,,Poly,AA:BB:CC:DD:EE:02,,\n";
        let all = rows(csv);
        assert_eq!(all.len(), 6);
        let ann = all[0].as_ref().unwrap();
        assert_eq!(ann.line, 2);
        assert_eq!(ann.calling_plan, Cell::Value(CallingPlan::RegionalMetered));

        let bad = all[1].as_ref().unwrap_err();
        let columns: Vec<Option<&str>> = bad.iter().map(|e| e.column.as_deref()).collect();
        assert_eq!(columns, [Some("Email"), Some("Phone Number"), Some("SMS"), Some("Calling Plan"), None]);
        assert!(bad.iter().all(|e| e.line == 3));
        assert_eq!(bad[4].message, "desk phone 1: a MAC address is required");

        // The blank row (line 4) is skipped; line numbers stay true to the file.
        let bob = all[2].as_ref().unwrap();
        assert_eq!(bob.line, 5);
        assert_eq!(bob.phone_numbers.value().unwrap().len(), 2);
        assert_eq!(bob.calling_plan, Cell::Value(CallingPlan::GlobalSelect));
        assert_eq!(bob.sms, Cell::Value(false));

        let short = all[3].as_ref().unwrap_err();
        assert_eq!(short[0].line, 6);
        assert!(short[0].message.contains("2 cells but the header has 6"));

        // An unreadable MAC is reported once, as such.
        let dee = all[4].as_ref().unwrap_err();
        assert_eq!(dee.len(), 1);
        assert_eq!(dee[0].column.as_deref(), Some("Desk Phone MAC Address 1"));

        assert!(all[5].is_ok());
    }

    #[test]
    fn duplicate_macs_in_a_row_are_refused() {
        let csv = "Email,Desk Phone MAC Address 1,Desk Phone MAC Address 2\n\
                   ann@example.com,AA:BB:CC:DD:EE:01,aabbccddee01\n";
        let errors = rows(csv).remove(0).unwrap_err();
        assert!(errors[0].message.contains("listed twice"));
    }

    #[test]
    fn reading_is_streaming() {
        /// Endless input: a header, then the same row forever.
        struct Endless {
            sent_header: bool,
            pending: Vec<u8>,
        }
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.pending.is_empty() {
                    self.pending = if self.sent_header {
                        b"ann@example.com,101\n".to_vec()
                    } else {
                        self.sent_header = true;
                        b"Email,Extension Number\n".to_vec()
                    };
                }
                let n = buf.len().min(self.pending.len());
                buf[..n].copy_from_slice(&self.pending[..n]);
                self.pending.drain(..n);
                Ok(n)
            }
        }
        let reader = PhoneCsvReader::new(Endless { sent_header: false, pending: Vec::new() }).unwrap();
        let lines: Vec<u64> = reader.take(3).map(|row| row.unwrap().line).collect();
        assert_eq!(lines, [2, 3, 4]);
    }

    #[test]
    fn rows_of_a_file_with_bare_cr_line_endings_keep_their_line_numbers() {
        // Found by the phone_csv fuzz target: with classic Mac line endings every row was
        // reported as line 1.
        let csv = "Email,Extension Number\rann@example.com,101\r\rbob@example.com,x\rcat@example.com,103\r";
        let rows: Vec<_> = PhoneCsvReader::new(csv.as_bytes()).unwrap().collect();
        assert_eq!(rows[0].as_ref().unwrap().line, 2);
        assert_eq!(rows[1].as_ref().unwrap_err()[0].line, 4);
        assert_eq!(rows[2].as_ref().unwrap().line, 5);
    }

    #[test]
    fn rows_of_a_file_with_crlf_line_endings_keep_their_line_numbers() {
        // Found by the phone_csv fuzz target: the csv crate placed each row after a `\r\n`
        // on the line before it.
        let csv = "Email,Extension Number\r\nann@example.com,101\r\nbob@example.com,x\r\n";
        let rows: Vec<_> = PhoneCsvReader::new(csv.as_bytes()).unwrap().collect();
        assert_eq!(rows[0].as_ref().unwrap().line, 2);
        assert_eq!(rows[1].as_ref().unwrap_err()[0].line, 3);
    }

    #[test]
    fn a_failing_input_is_reported_once_and_ends_the_stream() {
        struct Broken(bool);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 {
                    return Err(std::io::Error::other("disk on fire"));
                }
                self.0 = true;
                let data = b"Email\nann@example.com\n";
                buf[..data.len()].copy_from_slice(data);
                Ok(data.len())
            }
        }
        let all: Vec<_> = PhoneCsvReader::new(Broken(false)).unwrap().collect();
        assert_eq!(all.len(), 2);
        assert!(all[0].is_ok());
        assert!(all[1].as_ref().unwrap_err()[0].message.contains("disk on fire"));
    }

    /// The user's current desk phone, in slot 1.
    fn current_desk() -> Vec<DeskPhone> {
        vec![DeskPhone {
            slot: 1,
            brand: Some("Polycom".into()),
            model: Some("VVX 450".into()),
            mac_address: "AA:BB:CC:DD:EE:01".into(),
            provision_template: None,
        }]
    }

    fn fields(csv: &str, mode: ImportMode) -> PhoneFields {
        row_fields(&one_row(csv), mode, &current_desk()).unwrap()
    }

    const DEVICE_ONLY: &str = "Email,Desk Phone Brand 2,Desk Phone Model 2,Desk Phone MAC Address 2\n\
                               ann@example.com,Yealink,T54W,AA:BB:CC:DD:EE:02\n";

    fn yealink(slot: u8) -> DeskPhone {
        DeskPhone {
            slot,
            brand: Some("Yealink".into()),
            model: Some("T54W".into()),
            mac_address: "AA:BB:CC:DD:EE:02".into(),
            provision_template: None,
        }
    }

    #[test]
    fn merge_keeps_what_the_row_omits() {
        let f = fields(DEVICE_ONLY, ImportMode::Merge);
        assert_eq!(
            f,
            PhoneFields { desk_phones: Some(vec![current_desk().remove(0), yealink(2)]), ..PhoneFields::default() }
        );
    }

    #[test]
    fn replace_clears_what_the_row_omits() {
        let f = fields(DEVICE_ONLY, ImportMode::Replace);
        assert_eq!(f.site, Field::Clear);
        assert_eq!(f.extension, Field::Clear);
        assert_eq!(f.number, Field::Clear);
        assert_eq!(f.calling_plan, Field::Clear);
        assert_eq!(f.sms_enabled, Field::Clear);
        assert_eq!(f.desk_phones, Some(vec![yealink(2)]), "the row is the whole list");
    }

    #[test]
    fn empty_cells_keep_in_merge_and_clear_in_replace() {
        let csv = "Email,Phone Number,Calling Plan,SMS\nann@example.com,,,\n";
        assert_eq!(fields(csv, ImportMode::Merge), PhoneFields::default());
        let f = fields(csv, ImportMode::Replace);
        assert_eq!((f.number, f.calling_plan, f.sms_enabled), (Field::Clear, Field::Clear, Field::Clear));
    }

    #[test]
    fn values_set_and_replace() {
        let csv = "Email,Site Name,Extension Number,Phone Number,Calling Plan,Desk Phone MAC Address 1,Desk Phone Provision Template 1\n\
                   ann@example.com,london,0,+44 20 7946 0019,Global Select,aa-bb-cc-dd-ee-01,T1\n";
        let f = fields(csv, ImportMode::Merge);
        assert_eq!(f.site, Field::Set("london".into()));
        assert_eq!(f.extension, Field::Set(0), "0 asks for the next free extension");
        assert_eq!(f.number, Field::Set("+442079460019".into()));
        assert_eq!(f.calling_plan, Field::Set(CallingPlan::GlobalSelect));
        assert_eq!(f.sms_enabled, Field::Keep);
        let slot1 = DeskPhone {
            slot: 1,
            brand: None,
            model: None,
            mac_address: "AA:BB:CC:DD:EE:01".into(),
            provision_template: Some("T1".into()),
        };
        assert_eq!(f.desk_phones, Some(vec![slot1.clone()]), "the slot the row names is set as written");
        let f = fields(csv, ImportMode::Replace);
        assert_eq!(f.sms_enabled, Field::Clear);
        assert_eq!(f.desk_phones, Some(vec![slot1]));
    }

    #[test]
    fn site_code_changes_and_exact_extensions() {
        let csv =
            "Email,Site Code,Extension Number,Outbound Caller ID,Allow User to Change Outbound Caller ID,User Status\n\
                   ann@example.com,15,1502,Hide,No,Inactive\n";
        let f = fields(csv, ImportMode::Merge);
        assert_eq!(f.site, Field::Set("15".into()));
        assert_eq!(f.extension, Field::Set(1502));
        assert_eq!(f.outbound_caller_id, Field::Set("hidden".into()));
        assert_eq!(f.allow_caller_id_change, Field::Set(false));
        assert_eq!(f.status, Field::Set("inactive".into()));
    }

    #[test]
    fn a_user_holds_one_direct_number() {
        let row = one_row("Email,Phone Number\nann@example.com,+44 20 7946 0018;+44 20 7946 0019\n");
        let e = row_fields(&row, ImportMode::Merge, &[]).unwrap_err();
        assert_eq!((e.line, e.column.as_deref()), (2, Some("Phone Number")));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(input in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut data = b"Email,Site Code,Extension Number,Phone Number,SMS,Desk Phone MAC Address 1\n".to_vec();
            data.extend(input);
            let reader = PhoneCsvReader::new(data.as_slice()).unwrap();
            for row in reader.flatten() {
                prop_assert!(normalize_email(&row.email).is_ok());
                let _ = row_fields(&row, ImportMode::Replace, &[]);
            }
        }

        #[test]
        fn header_parsing_never_panics(input in "\\PC{0,200}") {
            let _ = PhoneCsvReader::new(input.as_bytes()).map(Iterator::count);
        }

        #[test]
        fn mac_forms_agree(octets in any::<[u8; 6]>()) {
            prop_assume!(octets != [0; 6] && octets != [0xFF; 6]);
            let colon = MacAddress(octets).to_string();
            let bare = colon.replace(':', "");
            let dashed = colon.replace(':', "-").to_lowercase();
            let dotted = format!("{}.{}.{}", &bare[..4], &bare[4..8], &bare[8..]);
            for form in [&colon, &bare, &dashed, &dotted] {
                prop_assert_eq!(form.parse::<MacAddress>(), Ok(MacAddress(octets)));
            }
        }

        #[test]
        fn merge_never_clears_and_replace_never_keeps(
            listed in proptest::option::of("\\+4420794600[0-9]{2}"),
            replace in any::<bool>(),
        ) {
            let row = PhoneCsvRow {
                email: "a@b.co".into(),
                phone_numbers: listed.clone().map_or(Cell::Empty, |n| Cell::Value(BTreeSet::from([n]))),
                calling_plan: Cell::Value(CallingPlan::GlobalSelect),
                ..PhoneCsvRow::default()
            };
            let mode = if replace { ImportMode::Replace } else { ImportMode::Merge };
            let f = row_fields(&row, mode, &[]).unwrap();
            prop_assert_eq!(f.calling_plan, Field::Set(CallingPlan::GlobalSelect));
            match (listed, replace) {
                (Some(n), _) => prop_assert_eq!(f.number, Field::Set(n)),
                (None, true) => prop_assert_eq!(f.number, Field::Clear),
                (None, false) => prop_assert_eq!(f.number, Field::Keep),
            }
            prop_assert!(replace || !matches!(f.site, Field::Clear));
        }
    }
}
