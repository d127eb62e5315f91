//! The active ISO 4217 currency codes, embedded: a sorted list of 167 codes is smaller than any
//! currency crate, needs no feature flags, and changes once or twice a year (a code added or
//! withdrawn is a one-line change here). Fund codes (`BOV`, `CLF`, …) are listed because ISO lists
//! them; precious metals, SDRs and testing codes (`XAU`, `XDR`, `XTS`, `XXX`) are not currencies
//! a purchase is paid in, and no platform takes them.
//!
//! Source: the ISO 4217 list one (current currency and funds), amendments to 2025 (`XCG`
//! replaces `ANG`, `ZWG` replaces `ZWL`, `SLE` replaces `SLL`; `ANG` is kept while it circulates).

/// Sorted, so a code is found by binary search.
const ACTIVE: [&str; 167] = [
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CLF",
    "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB",
    "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR",
    "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD",
    "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR",
    "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK",
    "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP",
    "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD",
    "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD",
    "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// Whether `code` (uppercase) is an active ISO 4217 currency.
pub fn is_active(code: &str) -> bool {
    ACTIVE.binary_search(&code).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_and_unique_so_binary_search_finds_every_code() {
        assert!(ACTIVE.windows(2).all(|w| w[0] < w[1]), "ACTIVE must be sorted without duplicates");
        assert!(ACTIVE.iter().all(|c| is_active(c)));
    }

    #[test]
    fn real_currencies_pass_and_made_up_or_non_money_codes_do_not() {
        for c in ["EUR", "USD", "JPY", "GBP", "CHF", "KWD", "XOF"] {
            assert!(is_active(c), "{c}");
        }
        for c in ["ZZZ", "XXX", "XTS", "XAU", "XDR", "HRK", "eur", "EU"] {
            assert!(!is_active(c), "{c}");
        }
    }
}
