//! Bulk phone CSV (Zoom Phone-style): streaming row parsing and per-user change planning.
//!
//! Zoom's phone upload replaces a user's whole phone profile, so a row that only lists a new desk
//! phone silently drops the user's number and calling plan. Here every field of a row keeps
//! three states: its column is absent from the file, present but empty, or holds a value.
//! [`plan_phone_change`] turns a row into the list of changes for one user:
//!
//! | column…             | `merge` (default) | `replace` (Zoom's behaviour) |
//! |---------------------|-------------------|------------------------------|
//! | absent from file    | keep              | clear                        |
//! | present, empty cell | keep              | clear                        |
//! | holds a value       | set               | set                          |
//!
//! In `merge`, numbers and desk phones listed are added to the user's and those not listed are
//! kept; in `replace` the row is the user's complete list. An empty cell keeps in `merge`
//! because spreadsheets leave blanks far more often than people mean "delete". Changes come
//! back removals first, which is what a dry run prints.
//!
//! Parsing is streaming: [`PhoneCsvReader`] yields one row at a time from any `Read`, and a bad
//! row is reported with its line number without stopping the rows after it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::catalog::CallingPlan;
use super::phone::{normalize_e164, ExtensionRequest, SiteCode};

/// Desk phones per user the file format allows.
pub const MAX_DESK_PHONES: u8 = 9;

// ---------------------------------------------------------------------------------------------
// Field values
// ---------------------------------------------------------------------------------------------

/// One cell of a row, keeping the difference between "no such column" and "empty cell".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Field<T> {
    /// The file has no such column.
    #[default]
    Absent,
    /// The column exists but this row's cell is blank.
    Empty,
    Value(T),
}

impl<T> Field<T> {
    pub fn value(&self) -> Option<&T> {
        match self {
            Field::Value(value) => Some(value),
            Field::Absent | Field::Empty => None,
        }
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, Field::Absent)
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
        for (i, octet) in octets.iter_mut().enumerate() {
            *octet = (hex[2 * i] << 4) | hex[2 * i + 1];
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
pub enum UserStatus {
    Active,
    Inactive,
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserStatus::Active => "active",
            UserStatus::Inactive => "inactive",
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

/// A pragmatic address check: ASCII `local@domain`, dot-atom local part of at most 64
/// characters, a domain of at least two DNS labels with a non-numeric top label, 254 in all.
pub fn is_valid_email(address: &str) -> bool {
    if address.len() > 254 || !address.is_ascii() {
        return false;
    }
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels.last().is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
    local_ok && domain_ok
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

/// The four columns of one desk phone slot (1 to 9).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeskPhoneColumns {
    pub slot: u8,
    pub brand: Field<String>,
    pub model: Field<String>,
    pub mac: Field<MacAddress>,
    pub provision_template: Field<String>,
}

/// One valid data row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneCsvRow {
    /// Line of the file the row starts on (the header is line 1).
    pub line: u64,
    /// Lower-cased.
    pub email: String,
    pub package: Field<String>,
    pub site_code: Field<SiteCode>,
    pub site_name: Field<String>,
    pub user_template: Field<String>,
    pub extension: Field<ExtensionRequest>,
    /// E.164; a cell may list several numbers separated by `;` or `,`.
    pub phone_numbers: Field<BTreeSet<String>>,
    pub calling_plan: Field<CallingPlan>,
    pub outbound_caller_id: Field<OutboundCallerId>,
    pub allow_caller_id_change: Field<bool>,
    pub sms: Field<bool>,
    pub status: Field<UserStatus>,
    /// One entry per desk phone slot that has at least one column in the file, by slot.
    pub desk_phones: Vec<DeskPhoneColumns>,
}

/// A problem with the file's header or one of its rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {message}", column.as_ref().map(|c| format!(", column `{c}`")).unwrap_or_default())]
pub struct RowError {
    pub line: u64,
    /// The column header as written in the file.
    pub column: Option<String>,
    pub message: String,
}

impl RowError {
    fn new(line: u64, column: Option<&str>, message: impl Into<String>) -> Self {
        RowError { line, column: column.map(str::to_owned), message: message.into() }
    }
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
    reader: csv::Reader<R>,
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
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(input);
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
                    } else if !is_valid_email(cell) {
                        fail(format!("`{cell}` is not a valid email address"));
                    } else {
                        email = Some(cell.to_ascii_lowercase());
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
                        flag(c).map(|on| if on { UserStatus::Active } else { UserStatus::Inactive })
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

fn text(cell: &str) -> Field<String> {
    if cell.is_empty() {
        Field::Empty
    } else {
        Field::Value(cell.to_owned())
    }
}

fn parse<T, E: fmt::Display>(
    cell: &str,
    fail: &mut impl FnMut(String),
    read: impl FnOnce(&str) -> Result<T, E>,
) -> Field<T> {
    if cell.is_empty() {
        return Field::Empty;
    }
    match read(cell) {
        Ok(value) => Field::Value(value),
        Err(error) => {
            fail(error.to_string());
            Field::Empty
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
// Planning
// ---------------------------------------------------------------------------------------------

/// How a row combines with the user's current phone profile (see the module table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    #[default]
    Merge,
    Replace,
}

/// A desk phone assigned to a user, keyed by MAC address in [`PhonePlanState`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeskPhone {
    pub brand: Option<String>,
    pub model: Option<String>,
    pub provision_template: Option<String>,
}

impl fmt::Display for DeskPhone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = [&self.brand, &self.model].into_iter().filter_map(Clone::clone).collect();
        if let Some(template) = &self.provision_template {
            parts.push(format!("(template {template})"));
        }
        f.write_str(&parts.join(" "))
    }
}

/// A user's current phone profile, as far as the CSV can change it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhonePlanState {
    pub package: Option<String>,
    pub site_code: Option<SiteCode>,
    pub site_name: Option<String>,
    pub user_template: Option<String>,
    pub extension: Option<u32>,
    /// E.164.
    pub phone_numbers: BTreeSet<String>,
    pub calling_plan: Option<CallingPlan>,
    pub outbound_caller_id: Option<OutboundCallerId>,
    pub allow_caller_id_change: Option<bool>,
    pub sms: Option<bool>,
    pub status: Option<UserStatus>,
    pub desk_phones: BTreeMap<MacAddress, DeskPhone>,
}

/// Which part of the phone profile a change touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneField {
    Package,
    Site,
    UserTemplate,
    Extension,
    PhoneNumber,
    CallingPlan,
    OutboundCallerId,
    AllowCallerIdChange,
    Sms,
    Status,
    DeskPhone,
}

impl fmt::Display for PhoneField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PhoneField::Package => "package",
            PhoneField::Site => "site",
            PhoneField::UserTemplate => "user template",
            PhoneField::Extension => "extension",
            PhoneField::PhoneNumber => "phone number",
            PhoneField::CallingPlan => "calling plan",
            PhoneField::OutboundCallerId => "outbound caller ID",
            PhoneField::AllowCallerIdChange => "user may change caller ID",
            PhoneField::Sms => "SMS",
            PhoneField::Status => "status",
            PhoneField::DeskPhone => "desk phone",
        })
    }
}

/// A value in a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneValue {
    Text(String),
    Site {
        code: Option<SiteCode>,
        name: Option<String>,
    },
    Extension(u32),
    /// `0`: the next free extension of the site.
    NextFreeExtension,
    Number(String),
    CallingPlan(CallingPlan),
    CallerId(OutboundCallerId),
    Flag(bool),
    Status(UserStatus),
    DeskPhone {
        mac: MacAddress,
        phone: DeskPhone,
    },
}

impl fmt::Display for PhoneValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhoneValue::Text(text) | PhoneValue::Number(text) => f.write_str(text),
            PhoneValue::Site { code, name } => match (code, name) {
                (Some(code), Some(name)) => write!(f, "{name} ({code})"),
                (Some(code), None) => write!(f, "code {code}"),
                (None, Some(name)) => f.write_str(name),
                (None, None) => f.write_str("main site"),
            },
            PhoneValue::Extension(extension) => write!(f, "{extension}"),
            PhoneValue::NextFreeExtension => f.write_str("next free extension"),
            PhoneValue::CallingPlan(plan) => f.write_str(plan.display_name()),
            PhoneValue::CallerId(caller_id) => write!(f, "{caller_id}"),
            PhoneValue::Flag(true) => f.write_str("yes"),
            PhoneValue::Flag(false) => f.write_str("no"),
            PhoneValue::Status(status) => write!(f, "{status}"),
            PhoneValue::DeskPhone { mac, phone } => {
                let described = phone.to_string();
                if described.is_empty() {
                    write!(f, "{mac}")
                } else {
                    write!(f, "{mac} {described}")
                }
            }
        }
    }
}

/// The kind of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    /// The value goes away (`old` only).
    Remove,
    /// A single value is set or replaced, or a desk phone's details change (`new`, maybe `old`).
    Set,
    /// A number or desk phone is added to the user's list (`new` only).
    Add,
}

/// One change to one user's phone profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneFieldChange {
    pub field: PhoneField,
    pub action: ChangeAction,
    pub old: Option<PhoneValue>,
    pub new: Option<PhoneValue>,
}

impl fmt::Display for PhoneFieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |value: &Option<PhoneValue>| value.as_ref().map_or_else(|| "(none)".to_owned(), ToString::to_string);
        match self.action {
            ChangeAction::Remove => write!(f, "- {}: {}", self.field, show(&self.old)),
            ChangeAction::Add => write!(f, "+ {}: {}", self.field, show(&self.new)),
            ChangeAction::Set => write!(f, "~ {}: {} -> {}", self.field, show(&self.old), show(&self.new)),
        }
    }
}

/// Plans the changes one row makes to one user, removals first.
///
/// Extensions: `0` keeps an extension the user already has. Removing the site sends the user
/// back to the account's main site. Nothing here checks availability (taken extensions, numbers
/// outside the pool); the pipeline does that when it applies the plan.
pub fn plan_phone_change(current: &PhonePlanState, row: &PhoneCsvRow, mode: ImportMode) -> Vec<PhoneFieldChange> {
    let mut changes = Vec::new();
    let text = |v: &String| PhoneValue::Text(v.clone());

    single(&mut changes, PhoneField::Package, current.package.as_ref(), &row.package, mode, text);
    plan_site(&mut changes, current, row, mode);
    single(&mut changes, PhoneField::UserTemplate, current.user_template.as_ref(), &row.user_template, mode, text);
    plan_extension(&mut changes, current.extension, &row.extension, mode);
    plan_numbers(&mut changes, &current.phone_numbers, &row.phone_numbers, mode);
    single(&mut changes, PhoneField::CallingPlan, current.calling_plan.as_ref(), &row.calling_plan, mode, |p| {
        PhoneValue::CallingPlan(*p)
    });
    single(
        &mut changes,
        PhoneField::OutboundCallerId,
        current.outbound_caller_id.as_ref(),
        &row.outbound_caller_id,
        mode,
        |c| PhoneValue::CallerId(c.clone()),
    );
    single(
        &mut changes,
        PhoneField::AllowCallerIdChange,
        current.allow_caller_id_change.as_ref(),
        &row.allow_caller_id_change,
        mode,
        |b| PhoneValue::Flag(*b),
    );
    single(&mut changes, PhoneField::Sms, current.sms.as_ref(), &row.sms, mode, |b| PhoneValue::Flag(*b));
    single(&mut changes, PhoneField::Status, current.status.as_ref(), &row.status, mode, |s| PhoneValue::Status(*s));
    plan_desk_phones(&mut changes, &current.desk_phones, &row.desk_phones, mode);

    changes.sort_by_key(|change| change.action != ChangeAction::Remove);
    changes
}

/// What a row wants for a single-valued field: `None` keep, `Some(None)` clear.
fn wanted<T>(incoming: &Field<T>, mode: ImportMode) -> Option<Option<&T>> {
    match (incoming, mode) {
        (Field::Value(value), _) => Some(Some(value)),
        (Field::Absent | Field::Empty, ImportMode::Merge) => None,
        (Field::Absent | Field::Empty, ImportMode::Replace) => Some(None),
    }
}

fn single<T: PartialEq>(
    changes: &mut Vec<PhoneFieldChange>,
    field: PhoneField,
    current: Option<&T>,
    incoming: &Field<T>,
    mode: ImportMode,
    wrap: impl Fn(&T) -> PhoneValue,
) {
    let Some(new) = wanted(incoming, mode) else {
        return;
    };
    if new == current {
        return;
    }
    changes.push(match new {
        None => PhoneFieldChange { field, action: ChangeAction::Remove, old: current.map(&wrap), new: None },
        Some(value) => {
            PhoneFieldChange { field, action: ChangeAction::Set, old: current.map(&wrap), new: Some(wrap(value)) }
        }
    });
}

fn plan_site(changes: &mut Vec<PhoneFieldChange>, current: &PhonePlanState, row: &PhoneCsvRow, mode: ImportMode) {
    let old = PhoneValue::Site { code: current.site_code.clone(), name: current.site_name.clone() };
    let has_site = current.site_code.is_some() || current.site_name.is_some();
    let (code, name) = (row.site_code.value(), row.site_name.value());
    if code.is_none() && name.is_none() {
        if mode == ImportMode::Replace && has_site {
            changes.push(PhoneFieldChange {
                field: PhoneField::Site,
                action: ChangeAction::Remove,
                old: Some(old),
                new: None,
            });
        }
        return;
    }
    let same_code = code.is_none_or(|code| current.site_code.as_ref() == Some(code));
    let same_name = name.is_none_or(|name| {
        current.site_name.as_deref().is_some_and(|current| current.trim().eq_ignore_ascii_case(name))
    });
    if same_code && same_name {
        return;
    }
    changes.push(PhoneFieldChange {
        field: PhoneField::Site,
        action: ChangeAction::Set,
        old: has_site.then_some(old),
        new: Some(PhoneValue::Site { code: code.cloned(), name: name.cloned() }),
    });
}

fn plan_extension(
    changes: &mut Vec<PhoneFieldChange>,
    current: Option<u32>,
    incoming: &Field<ExtensionRequest>,
    mode: ImportMode,
) {
    let new = match wanted(incoming, mode) {
        Some(None) if current.is_some() => None,
        Some(Some(ExtensionRequest::NextFree)) if current.is_none() => Some(PhoneValue::NextFreeExtension),
        Some(Some(&ExtensionRequest::Exact(extension))) if current != Some(extension) => {
            Some(PhoneValue::Extension(extension))
        }
        _ => return,
    };
    let action = if new.is_some() { ChangeAction::Set } else { ChangeAction::Remove };
    changes.push(PhoneFieldChange {
        field: PhoneField::Extension,
        action,
        old: current.map(PhoneValue::Extension),
        new,
    });
}

fn plan_numbers(
    changes: &mut Vec<PhoneFieldChange>,
    current: &BTreeSet<String>,
    incoming: &Field<BTreeSet<String>>,
    mode: ImportMode,
) {
    let empty = BTreeSet::new();
    let listed = incoming.value().unwrap_or(&empty);
    if mode == ImportMode::Replace {
        for number in current.difference(listed) {
            changes.push(PhoneFieldChange {
                field: PhoneField::PhoneNumber,
                action: ChangeAction::Remove,
                old: Some(PhoneValue::Number(number.clone())),
                new: None,
            });
        }
    }
    for number in listed.difference(current) {
        changes.push(PhoneFieldChange {
            field: PhoneField::PhoneNumber,
            action: ChangeAction::Add,
            old: None,
            new: Some(PhoneValue::Number(number.clone())),
        });
    }
}

fn plan_desk_phones(
    changes: &mut Vec<PhoneFieldChange>,
    current: &BTreeMap<MacAddress, DeskPhone>,
    slots: &[DeskPhoneColumns],
    mode: ImportMode,
) {
    let mut listed: BTreeMap<MacAddress, &DeskPhoneColumns> = BTreeMap::new();
    for slot in slots {
        if let Some(mac) = slot.mac.value() {
            listed.insert(*mac, slot);
        }
    }
    if mode == ImportMode::Replace {
        for (mac, phone) in current {
            if !listed.contains_key(mac) {
                changes.push(PhoneFieldChange {
                    field: PhoneField::DeskPhone,
                    action: ChangeAction::Remove,
                    old: Some(PhoneValue::DeskPhone { mac: *mac, phone: phone.clone() }),
                    new: None,
                });
            }
        }
    }
    for (mac, slot) in listed {
        let detail = |incoming: &Field<String>, current: Option<&String>| match wanted(incoming, mode) {
            None => current.cloned(),
            Some(new) => new.cloned(),
        };
        let existing = current.get(&mac);
        let phone = DeskPhone {
            brand: detail(&slot.brand, existing.and_then(|p| p.brand.as_ref())),
            model: detail(&slot.model, existing.and_then(|p| p.model.as_ref())),
            provision_template: detail(&slot.provision_template, existing.and_then(|p| p.provision_template.as_ref())),
        };
        match existing {
            None => changes.push(PhoneFieldChange {
                field: PhoneField::DeskPhone,
                action: ChangeAction::Add,
                old: None,
                new: Some(PhoneValue::DeskPhone { mac, phone }),
            }),
            Some(existing) if *existing != phone => changes.push(PhoneFieldChange {
                field: PhoneField::DeskPhone,
                action: ChangeAction::Set,
                old: Some(PhoneValue::DeskPhone { mac, phone: existing.clone() }),
                new: Some(PhoneValue::DeskPhone { mac, phone }),
            }),
            Some(_) => {}
        }
    }
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
            assert!(is_valid_email(good), "{good}");
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
            assert!(!is_valid_email(bad), "{bad}");
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
        assert_eq!(row.extension, Field::Value(ExtensionRequest::NextFree));
        assert_eq!(row.phone_numbers, Field::Value(["+15555555555".to_owned()].into_iter().collect()));
        assert_eq!(row.calling_plan, Field::Value(CallingPlan::RegionalUnlimited));
        assert_eq!(row.sms, Field::Value(true));
        assert_eq!(row.status, Field::Value(UserStatus::Active));
        assert_eq!(row.package, Field::Absent);
        assert_eq!(row.desk_phones.len(), 1);
        assert_eq!(row.desk_phones[0].slot, 2);
        assert_eq!(row.desk_phones[0].brand, Field::Absent);
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
        assert_eq!(row.package, Field::Empty);
        assert!(row.phone_numbers.value().is_some());
        assert_eq!(row.calling_plan, Field::Absent);
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
        assert_eq!(ann.calling_plan, Field::Value(CallingPlan::RegionalMetered));

        let bad = all[1].as_ref().unwrap_err();
        let columns: Vec<Option<&str>> = bad.iter().map(|e| e.column.as_deref()).collect();
        assert_eq!(columns, [Some("Email"), Some("Phone Number"), Some("SMS"), Some("Calling Plan"), None]);
        assert!(bad.iter().all(|e| e.line == 3));
        assert_eq!(bad[4].message, "desk phone 1: a MAC address is required");

        // The blank row (line 4) is skipped; line numbers stay true to the file.
        let bob = all[2].as_ref().unwrap();
        assert_eq!(bob.line, 5);
        assert_eq!(bob.phone_numbers.value().unwrap().len(), 2);
        assert_eq!(bob.calling_plan, Field::Value(CallingPlan::GlobalSelect));
        assert_eq!(bob.sms, Field::Value(false));

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

    fn current() -> PhonePlanState {
        let mut state = PhonePlanState {
            site_code: Some("12".parse().unwrap()),
            site_name: Some("London".into()),
            extension: Some(1201),
            calling_plan: Some(CallingPlan::RegionalMetered),
            sms: Some(true),
            ..PhonePlanState::default()
        };
        state.phone_numbers.insert("+442079460018".into());
        state.desk_phones.insert(
            "AA:BB:CC:DD:EE:01".parse().unwrap(),
            DeskPhone { brand: Some("Polycom".into()), model: Some("VVX 450".into()), provision_template: None },
        );
        state
    }

    const DEVICE_ONLY: &str = "Email,Desk Phone Brand 1,Desk Phone Model 1,Desk Phone MAC Address 1\n\
                               ann@example.com,Yealink,T54W,AA:BB:CC:DD:EE:02\n";

    #[test]
    fn merge_keeps_what_the_row_omits() {
        let row = one_row(DEVICE_ONLY);
        let changes = plan_phone_change(&current(), &row, ImportMode::Merge);
        let printed: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(printed, ["+ desk phone: AA:BB:CC:DD:EE:02 Yealink T54W"]);
    }

    #[test]
    fn replace_clears_what_the_row_omits_removals_first() {
        let row = one_row(DEVICE_ONLY);
        let changes = plan_phone_change(&current(), &row, ImportMode::Replace);
        let printed: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            printed,
            [
                "- site: London (12)",
                "- extension: 1201",
                "- phone number: +442079460018",
                "- calling plan: Regional Metered",
                "- SMS: yes",
                "- desk phone: AA:BB:CC:DD:EE:01 Polycom VVX 450",
                "+ desk phone: AA:BB:CC:DD:EE:02 Yealink T54W",
            ]
        );
        assert!(changes.iter().take_while(|c| c.action == ChangeAction::Remove).count() == 6);
    }

    #[test]
    fn empty_cells_keep_in_merge_and_clear_in_replace() {
        let row = one_row("Email,Phone Number,Calling Plan,SMS\nann@example.com,,,\n");
        assert!(plan_phone_change(&current(), &row, ImportMode::Merge).is_empty());
        let fields: Vec<(PhoneField, ChangeAction)> =
            plan_phone_change(&current(), &row, ImportMode::Replace).iter().map(|c| (c.field, c.action)).collect();
        assert!(fields.contains(&(PhoneField::PhoneNumber, ChangeAction::Remove)));
        assert!(fields.contains(&(PhoneField::CallingPlan, ChangeAction::Remove)));
        assert!(fields.contains(&(PhoneField::Sms, ChangeAction::Remove)));
    }

    #[test]
    fn values_set_add_and_replace() {
        let csv = "Email,Site Name,Extension Number,Phone Number,Calling Plan,Desk Phone MAC Address 1,Desk Phone Provision Template 1\n\
                   ann@example.com,london,0,+44 20 7946 0019,Global Select,aa-bb-cc-dd-ee-01,T1\n";
        let row = one_row(csv);

        let merge = plan_phone_change(&current(), &row, ImportMode::Merge);
        let printed: Vec<String> = merge.iter().map(ToString::to_string).collect();
        assert_eq!(
            printed,
            [
                "+ phone number: +442079460019",
                "~ calling plan: Regional Metered -> Global Select",
                "~ desk phone: AA:BB:CC:DD:EE:01 Polycom VVX 450 -> AA:BB:CC:DD:EE:01 Polycom VVX 450 (template T1)",
            ],
            "site name matches case-insensitively and 0 keeps the extension"
        );

        let replace = plan_phone_change(&current(), &row, ImportMode::Replace);
        let printed: Vec<String> = replace.iter().map(ToString::to_string).collect();
        assert_eq!(
            printed,
            [
                "- phone number: +442079460018",
                "- SMS: yes",
                "+ phone number: +442079460019",
                "~ calling plan: Regional Metered -> Global Select",
                "~ desk phone: AA:BB:CC:DD:EE:01 Polycom VVX 450 -> AA:BB:CC:DD:EE:01 (template T1)",
            ]
        );

        let newcomer = plan_phone_change(&PhonePlanState::default(), &row, ImportMode::Merge);
        let printed: Vec<String> = newcomer.iter().map(ToString::to_string).collect();
        assert_eq!(printed[0], "~ site: (none) -> london");
        assert_eq!(printed[1], "~ extension: (none) -> next free extension");
    }

    #[test]
    fn site_code_changes_and_exact_extensions() {
        let csv =
            "Email,Site Code,Extension Number,Outbound Caller ID,Allow User to Change Outbound Caller ID,User Status\n\
                   ann@example.com,15,1502,Hide,No,Inactive\n";
        let row = one_row(csv);
        let printed: Vec<String> =
            plan_phone_change(&current(), &row, ImportMode::Merge).iter().map(ToString::to_string).collect();
        assert_eq!(
            printed,
            [
                "~ site: London (12) -> code 15",
                "~ extension: 1201 -> 1502",
                "~ outbound caller ID: (none) -> hidden",
                "~ user may change caller ID: (none) -> no",
                "~ status: (none) -> inactive",
            ]
        );
    }

    proptest! {
        #[test]
        fn parsing_never_panics(input in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut data = b"Email,Site Code,Extension Number,Phone Number,SMS,Desk Phone MAC Address 1\n".to_vec();
            data.extend(input);
            let reader = PhoneCsvReader::new(data.as_slice()).unwrap();
            for row in reader.flatten() {
                prop_assert!(is_valid_email(&row.email));
                let _ = plan_phone_change(&PhonePlanState::default(), &row, ImportMode::Replace);
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
        fn planned_removals_always_come_first(
            numbers in proptest::collection::btree_set("\\+4420794600[0-9]{2}", 0..4),
            listed in proptest::collection::btree_set("\\+4420794600[0-9]{2}", 0..4),
            replace in any::<bool>(),
        ) {
            let state = PhonePlanState { phone_numbers: numbers.clone(), ..PhonePlanState::default() };
            let row = PhoneCsvRow {
                email: "a@b.co".into(),
                phone_numbers: Field::Value(listed.clone()),
                calling_plan: Field::Value(CallingPlan::GlobalSelect),
                ..PhoneCsvRow::default()
            };
            let mode = if replace { ImportMode::Replace } else { ImportMode::Merge };
            let changes = plan_phone_change(&state, &row, mode);
            let first_other = changes.iter().position(|c| c.action != ChangeAction::Remove).unwrap_or(changes.len());
            prop_assert!(changes[first_other..].iter().all(|c| c.action != ChangeAction::Remove));
            let removed = changes.iter().filter(|c| c.action == ChangeAction::Remove).count();
            let want_removed = if replace { numbers.difference(&listed).count() } else { 0 };
            prop_assert_eq!(removed, want_removed);
        }
    }
}
