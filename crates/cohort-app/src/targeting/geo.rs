//! Where a visitor is, from its IP address: a MaxMind database (GeoIP2 or GeoLite2,
//! City or Country) read into memory once, given by path in the configuration.

use std::net::IpAddr;
use std::path::Path;

use cohort_engine::targeting::Location;
use maxminddb::{Reader, geoip2};

pub struct Geo {
    reader: Reader<Vec<u8>>,
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
        match found.decode::<geoip2::City>() {
            Ok(Some(city)) => Location {
                country: city.country.iso_code.map(str::to_ascii_uppercase),
                coordinates: city.location.latitude.zip(city.location.longitude),
            },
            _ => Location::default(),
        }
    }
}
