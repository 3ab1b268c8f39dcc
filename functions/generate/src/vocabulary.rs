//! The fixed words generated projects are made of: members, stages, names, places,
//! texts and classes. Strings that need escaping in CSV and JSON (quotes, commas,
//! newlines, non-ASCII) are here on purpose.

/// The data sources images come from, in turn.
pub const DATA_SOURCES: [&str; 3] = ["camera-north", "camera-south", "upload"];

/// The columns of a row project's table, in order.
pub const ROW_COLUMNS: [&str; 4] = ["product", "review", "rating", "country"];

pub(crate) const MANAGER: &str = "manager@example.com";
pub(crate) const REVIEWER: &str = "reviewer@example.com";
pub(crate) const LABELERS: [&str; 5] = [
    "labeler1@example.com",
    "labeler2@example.com",
    "labeler3@example.com",
    "labeler4@example.com",
    "labeler5@example.com",
];
pub(crate) const STAGE_LABEL: &str = "Label";
pub(crate) const STAGE_REVIEW: &str = "Review";
pub(crate) const STAGE_COMPLETE: &str = "Complete";

pub(crate) const PEOPLE: &[&str] = &[
    "Zoë Martin",
    "José Álvarez",
    "Ada Lovelace",
    "Li Wei",
    "Grace Hopper",
    "Søren Kierkegaard",
];
pub(crate) const ORGS: &[&str] = &[
    "Acme, Inc.",
    "Globex",
    "Initech",
    "Umbrella Corp.",
    "Café Müller",
];
pub(crate) const PLACES: &[&str] = &["São Paulo", "Paris", "Zürich", "New York", "Kraków"];
pub(crate) const DATES: &[&str] = &["12 March 2019", "1990-04-12", "Friday", "1 May 2024"];

pub(crate) const GROUP_ELEMENT_CLASSES: &[&str] = &["person", "face", "hand", "bag"];
pub(crate) const GROUP_CLASSES: &[&str] = &["family", "crowd"];

/// A sentence with placeholders `{P}` person, `{O}` organization, `{L}` location,
/// `{D}` date, and the relations between its placeholders (by position).
pub(crate) struct Sentence {
    pub(crate) text: &'static str,
    pub(crate) relations: &'static [(&'static str, usize, usize)],
}

pub(crate) const SENTENCES: &[Sentence] = &[
    Sentence {
        text: "{P} works for {O} in {L}.",
        relations: &[("works_for", 0, 1), ("located_in", 1, 2)],
    },
    Sentence {
        text: "{P} joined {O} on {D}.",
        relations: &[("works_for", 0, 1)],
    },
    Sentence {
        text: "{P} was born in {L} on {D}.",
        relations: &[("lives_in", 0, 1), ("born_on", 0, 2)],
    },
    Sentence {
        text: "{O} opened an office in {L}, said {P}.",
        relations: &[("located_in", 0, 1), ("works_for", 2, 0)],
    },
    Sentence {
        text: "\"We are hiring,\" said {P} of {O} today.",
        relations: &[("works_for", 0, 1)],
    },
    Sentence {
        text: "Note:\n{P} visits {L} on {D}.",
        relations: &[],
    },
];

pub(crate) const TRANSCRIPTIONS: &[&str] = &[
    "Dear Sir,",
    "Meet me at the café at 5",
    "Total: 42,50 €",
    "He said \"hi\" and left",
    "Zoë & José",
    "line1\nline2",
    "Rua Augusta, São Paulo",
    "Please return by Friday.",
    "No. 17",
];

pub(crate) const REMARKS: &[&str] = &[
    "none",
    "say \"hi\"",
    "a, b",
    "line1\nline2",
    "prefers Zoë",
    "moved to São Paulo",
];

pub(crate) const PRODUCTS: &[&str] = &[
    "Espresso machine",
    "Crème fraîche, 200 g",
    "USB-C cable",
    "Hiking boots",
];
pub(crate) const REVIEWS: &[&str] = &[
    "Works great.",
    "Broke after \"two\" days",
    "Très bien!\nWould buy again.",
    "meh",
    "Fast delivery, good price",
    "=SUM(A1:A3) stars, no less",
    "@support ممتاز جدا",
    "-\t5% off | next time",
];
pub(crate) const COUNTRIES: &[&str] = &["Brazil", "France", "Deutschland", "日本", "USA"];

pub(crate) const COLORS: &[&str] = &["red", "blue", "gris foncé", "black, matte"];
pub(crate) const SIZES: &[(u32, u32)] = &[(640, 480), (1024, 768), (1280, 720), (1920, 1080)];
