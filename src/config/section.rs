//! One `[[destinations]]` entry: the settings every destination has, and its platform's own
//! section. A platform's section struct lives in its folder (`crate::platforms::<p>::config`),
//! above this module; configuration reads it through [`Section`], and learns which `type`s exist
//! from the [`SectionReader`] the loader hands in (`crate::platforms`' list).

use std::any::Any;
use std::fmt;

use figment::value::Value;
use figment::Figment;
use serde::{Serialize, Serializer};

use super::{Common, Secret, Secrets};
use crate::core::plan::ConsentPurpose;
use crate::core::Route;

/// What the rest of the configuration reads of a platform's section.
pub trait Section: SectionValue + fmt::Debug + Send + Sync {
    fn name(&self) -> &str;
    fn common(&self) -> &Common;
    fn common_mut(&mut self) -> &mut Common;
    /// The longest an event may wait to be sent, in whole days (rounded up).
    fn window_days(&self) -> u64;
    /// The consent purpose where `consent.purpose` is not written: ad platforms need
    /// `ad_user_data` to receive anything (their events are ad user data as a whole).
    fn default_purpose(&self) -> ConsentPurpose {
        ConsentPurpose::AdUserData
    }
    /// The secrets only sending needs, with their keys. Loading reads them (unless it plans
    /// only: [`super::Secrets::SkipDestinations`]); [`Section::problems`] does not.
    fn secrets(&self) -> Vec<(&'static str, &Secret)>;
    /// Every problem of its own settings, as `destinations.NAME.KEY: why`.
    fn problems(&self, p: &mut Vec<String>);
    /// Every problem of a catalog route to it, as `{at}: why` or `{at}.KEY: why`.
    fn route_problems(&self, kind: &str, route: &Route, at: &str, p: &mut Vec<String>) {
        let _ = (kind, route, at, p);
    }
}

/// Every problem of one section: each secret that cannot be read — unless `secrets` says sending
/// is not planned ([`Secrets::SkipDestinations`]) — then its own ([`Section::problems`]).
pub fn problems_of(section: &dyn Section, secrets: Secrets, p: &mut Vec<String>) {
    if secrets == Secrets::Read {
        for (key, secret) in section.secrets() {
            if let Err(e) = secret.resolve() {
                p.push(format!("destinations.{}.{key} ({}): {e}", section.name(), secret.reference()));
            }
        }
    }
    section.problems(p);
}

/// What every section struct has by being `Clone + Serialize + 'static` (implemented once, below).
pub trait SectionValue: Any {
    fn clone_box(&self) -> Box<dyn Section>;
    fn as_any(&self) -> &dyn Any;
    /// Its keys as written (for `Serialize`; secrets show their references only).
    fn to_value(&self) -> Result<Value, Box<figment::Error>>;
}

impl<T: Section + Clone + Serialize> SectionValue for T {
    fn clone_box(&self) -> Box<dyn Section> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn to_value(&self) -> Result<Value, Box<figment::Error>> {
        Value::serialize(self).map_err(Box::new)
    }
}

/// The platforms a configuration may name in `type`, and how each reads its section.
#[derive(Clone, Copy)]
pub struct SectionReader {
    /// Every `type`, in the platform list's order.
    pub types: &'static [&'static str],
    /// Reads the section (the entry without its `type` key) of a platform in `types`; `None`
    /// for any other `type`.
    pub read: fn(type_name: &str, section: &Figment) -> Option<ReadSection>,
}

/// A platform's section read, or the first error in it (boxed: figment's error is large).
pub type ReadSection = Result<Box<dyn Section>, Box<figment::Error>>;

/// One configured destination: its platform's `type` and its section.
pub struct DestinationConfig {
    type_name: &'static str,
    section: Box<dyn Section>,
}

impl DestinationConfig {
    pub fn new(type_name: &'static str, section: Box<dyn Section>) -> Self {
        Self { type_name, section }
    }

    /// `type = "…"`: the platform.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The platform's own section, if it is a `T`.
    pub fn section<T: 'static>(&self) -> Option<&T> {
        self.section.as_any().downcast_ref()
    }
}

impl std::ops::Deref for DestinationConfig {
    type Target = dyn Section;

    fn deref(&self) -> &Self::Target {
        self.section.as_ref()
    }
}

impl std::ops::DerefMut for DestinationConfig {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.section.as_mut()
    }
}

impl Clone for DestinationConfig {
    fn clone(&self) -> Self {
        Self { type_name: self.type_name, section: self.section.clone_box() }
    }
}

impl fmt::Debug for DestinationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DestinationConfig").field("type", &self.type_name).field("section", &self.section).finish()
    }
}

impl Serialize for DestinationConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut value = self.section.to_value().map_err(serde::ser::Error::custom)?;
        if let Value::Dict(_, dict) = &mut value {
            dict.insert("type".to_owned(), Value::from(self.type_name));
        }
        value.serialize(serializer)
    }
}
