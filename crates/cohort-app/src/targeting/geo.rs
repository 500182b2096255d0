//! Where a visitor is, from its IP address: a MaxMind database (GeoIP2 or GeoLite2,
//! City or Country) read into memory once, given by path in the configuration.

use std::net::IpAddr;
use std::path::Path;

use cohort_engine::targeting::Location;
use maxminddb::Reader;
use serde::Deserialize;

pub struct Geo {
    reader: Reader<Vec<u8>>,
}

/// The two parts of a City or Country record a decision reads; the decoder skips the
/// rest (names in every language, subdivisions, postal codes…) without decoding it.
#[derive(Default, Deserialize)]
struct Place<'a> {
    #[serde(borrow, default)]
    country: Country<'a>,
    #[serde(default)]
    location: Coordinates,
}

#[derive(Default, Deserialize)]
struct Country<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Default, Deserialize)]
struct Coordinates {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
}

impl Geo {
    /// Opens the database; the error says why it cannot be used.
    pub fn open(path: &Path) -> Result<Self, String> {
        let reader = Reader::open_readfile(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self { reader })
    }

    /// The country and coordinates of an address; empty for one the database does
    /// not know (private networks, for one).
    pub fn locate(&self, ip: IpAddr) -> Location {
        let Ok(found) = self.reader.lookup(ip) else {
            return Location::default();
        };
        match found.decode::<Place>() {
            Ok(Some(place)) => Location {
                country: place.country.iso_code.map(str::to_ascii_uppercase),
                coordinates: place.location.latitude.zip(place.location.longitude),
            },
            _ => Location::default(),
        }
    }
}
