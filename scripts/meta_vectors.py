#!/usr/bin/env python3
"""Writes tests/vectors/meta/normalize.json: how Meta's official SDK normalises and hashes
customer information parameters, for the Rust tests of the Meta adapter and of core::pii.

The expectations come from the SDK alone, never from Surety's code:
  pip install facebook-business      # generated with the version recorded in the file
  python3 scripts/meta_vectors.py    # from the repository root

For every (field, input) the file records what
`facebook_business.adobjects.serverside.normalize.Normalize` makes of it:
  normalized  Normalize.normalize_field_skip_hashing(field, input)
  hashed      Normalize.normalize_field(field, input): what the SDK sends — the SHA-256 hex of
              `normalized`, or `normalized` itself when it already looks hashed (64 or 32 hex)
  error       the exception text when the SDK refuses the input (then normalized/hashed are null)
and, for the fields UserData carries, checks that UserData(...).normalize() produces the same
hash (external_id is the exception: UserData passes it through untouched; the vector then
records that as `user_data_value`).

`ge` and `db` get no field-specific rule in normalize.py: normalize_field only lowercases, trims
and hashes them, so the SDK accepts any text ("female" and "1990-01-31" are hashed as they are).
What it documents is narrower: UserData takes genders only as the `Gender` enum (values `f`,
`m`), and dates of birth "given as YYYYMMDD". For `ge` each vector therefore also records
`gender_enum`: the `Gender` member the input is the value of (`Gender(input)`), or null when
UserData cannot take it; for those that are, UserData's hash is checked like the others.

It also records the ISO 3166-1 alpha-2 codes the SDK accepts for `country` (from pycountry,
which the SDK uses), so the Rust list can be checked against it.
"""

import json
import os
import sys
from importlib import metadata

import pycountry
from facebook_business.adobjects.serverside.gender import Gender
from facebook_business.adobjects.serverside.normalize import Normalize
from facebook_business.adobjects.serverside.user_data import UserData

SHA_ABC = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"  # sha256("abc"), uppercase
MD5_ABC = "900150983cd24fb0d6963f7d28e17f72"  # md5("abc")

INPUTS = {
    "em": [
        "John.Doe@Example.com",
        "  john.doe@gmail.com  ",
        "JOHN@EXAMPLE.COM",
        "\tMixed.Case@Example.ORG\n",
        "jane+tag@sub.example.co.uk",
        "Jane.Doe@GoogleMail.com",
        "ünïcode@exämple.de",
        "john.doe @ example.com",
        SHA_ABC,
        MD5_ABC,
        "john.doe",
        "john@localhost",
    ],
    "ph": [
        "+49 151 2345678",
        "0049 151 2345678",
        "+1 (650) 555-1212",
        "16505551212",
        "+44 20 7946 0958",
        "+49 (0) 151 2345678",
        "  +33 6 12 34 56 78 ",
        "015123456789",
        "+0049 151 2345678",
        "+49.151.2345678",
        "1-800-FLOWERS",
        SHA_ABC,
    ],
    "fn": [
        "Jane",
        "  JANE ",
        "José",
        "Anne-Marie",
        "O'Brien",
        "Mary Ann",
        "ΟΔΥΣΣΕΑΣ",
        SHA_ABC,
    ],
    "ln": [
        "Doe",
        "van der Berg",
        "Smith-Jones",
        "Müller",
        "Ørsted",
    ],
    "ct": [
        "Berlin",
        "New York",
        "Saint-Étienne",
        "St. Louis",
        "Frankfurt am Main",
        "Paris 15",
        "O'Fallon",
        "München",
        "(Old Town) 2",
        "12345",
        SHA_ABC,
    ],
    "st": [
        "CA",
        "ca",
        "California",
        "Nord-Rhein Westfalen",
        "NY.",
        "Île-de-France",
    ],
    "zp": [
        "10115",
        "94035-1234",
        "SW1A 1AA",
        " 75015 ",
        "k1a 0b1",
        "12345-",
    ],
    "country": [
        "DE",
        "us",
        " Fr ",
        "GB",
        "U.S.",
        "de-",
        "XX",
        "Deutschland",
        "de-DE",
    ],
    "external_id": [
        "u-77",
        "U-77",
        "  User_42 ",
        "12345",
        "550e8400-e29b-41d4-a716-446655440000",
        MD5_ABC,
        SHA_ABC,
    ],
    # Meta documents f and m; the words and other values show what normalize_field makes of them.
    "ge": [
        "f",
        "m",
        "F",
        " m ",
        "M\n",
        "female",
        "Female",
        "MALE",
        "Male",
        "x",
        "unknown",
        "fem",
        "mf",
        "non-binary",
        SHA_ABC,
    ],
    # Meta documents YYYYMMDD; ISO dates, other orders and impossible dates show that the SDK
    # checks none of them.
    "db": [
        "19900131",
        " 19900131 ",
        "20000229",
        "19700101",
        "1990-01-31",
        "2000-02-29",
        "1970-01-01",
        "1990-02-30",
        "19900230",
        "1990-13-01",
        "2001-02-29",
        "1990-1-31",
        "1990/01/31",
        "31.01.1990",
        "01/31/1990",
        "Jan 31 1990",
        "1850-01-01",
        "2999-01-01",
        SHA_ABC,
    ],
}

# The UserData keyword for each field whose hash UserData.normalize() computes.
USER_DATA_KWARG = {
    "em": "emails",
    "ph": "phones",
    "fn": "first_names",
    "ln": "last_names",
    "ct": "cities",
    "st": "states",
    "zp": "zip_codes",
    "country": "country_codes",
    "external_id": "external_ids",
    "ge": "genders",
    "db": "dates_of_birth",
}


def vector(field, value):
    v = {"field": field, "input": value}
    try:
        v["normalized"] = Normalize.normalize_field_skip_hashing(field, value)
        v["hashed"] = Normalize.normalize_field(field, value)
        v["error"] = None
    except (TypeError, ValueError) as e:
        v["normalized"] = None
        v["hashed"] = None
        v["error"] = str(e)
        return v
    given = value
    if field == "ge":
        # UserData takes only Gender members; Gender(value) is the member whose value it is.
        try:
            given = Gender(value)
        except ValueError:
            v["gender_enum"] = None
            return v
        v["gender_enum"] = given.name
    produced = UserData(**{USER_DATA_KWARG[field]: [given]}).normalize()[field][0]
    if field == "external_id":
        # UserData sends external_id as given; Normalize.normalize_field hashes it like any field.
        v["user_data_value"] = produced
    elif produced != v["hashed"]:
        sys.exit(f"UserData and Normalize disagree on {field} {value!r}: {produced} vs {v['hashed']}")
    return v


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(root, "tests", "vectors", "meta", "normalize.json")
    doc = {
        "generated_by": "scripts/meta_vectors.py",
        "sdk": "facebook-business " + metadata.version("facebook-business"),
        "pycountry": metadata.version("pycountry"),
        "source": "facebook_business/adobjects/serverside/normalize.py, user_data.py",
        "vectors": [vector(f, v) for f, values in INPUTS.items() for v in values],
        "country_codes": sorted(c.alpha_2.lower() for c in pycountry.countries),
    }
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(doc['vectors'])} vectors to {os.path.relpath(out, root)}")


if __name__ == "__main__":
    main()
