use std::io::Cursor;

use serde_json::json;

use super::*;

fn open(text: &str, mapping: &Mapping, kind: Option<&str>) -> Result<CsvRows<Cursor<Vec<u8>>>, ReadError> {
    let options = CsvOptions { delimiter: b',', mapping, default_kind: kind };
    CsvRows::open(Cursor::new(text.as_bytes().to_vec()), &options, None)
}

fn all(r: &mut impl Rows) -> Vec<Row> {
    std::iter::from_fn(|| r.next_row().unwrap()).collect()
}

fn header_problems(text: &str, mapping: &Mapping, kind: Option<&str>) -> String {
    match open(text, mapping, kind) {
        Err(ReadError::Header(p)) => p.join("\n"),
        Err(e) => panic!("not a header problem: {e}"),
        Ok(_) => panic!("header accepted: {text}"),
    }
}

const HEADER: &str = "kind,occurred_at,subject.type,subject.id,value,currency,identity.email,consent.ad_user_data,\
                      attributes.channel,items";

#[test]
fn dotted_headers_nest_numbers_parse_items_are_json_and_empty_cells_are_absent() {
    let text = format!(
        "{HEADER}\n\
         offline_sale,2026-11-20T10:15:00Z,order,1042,59.90,EUR,Jane@Example.org,granted,store,\
         \"[{{\"\"id\"\":\"\"SKU-1\"\",\"\"price\"\":59.9,\"\"quantity\"\":1}}]\"\n\
         offline_sale,2026-11-20T11:00:00Z,order,1043,,,, ,,\n"
    );
    let mut r = open(&text, &Mapping::default(), None).unwrap();
    let rows = all(&mut r);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].line, 2);
    assert_eq!(
        rows[0].value.as_ref().unwrap(),
        &json!({
            "kind": "offline_sale", "occurred_at": "2026-11-20T10:15:00Z",
            "subject": {"type": "order", "id": "1042"}, "value": 59.9, "currency": "EUR",
            "identity": {"email": "Jane@Example.org"}, "consent": {"ad_user_data": "granted"},
            "attributes": {"channel": "store"}, "items": [{"id": "SKU-1", "price": 59.9, "quantity": 1}]
        })
    );
    assert_eq!(
        rows[1].value.as_ref().unwrap(),
        &json!({"kind": "offline_sale", "occurred_at": "2026-11-20T11:00:00Z", "subject": {"type": "order", "id": "1043"}})
    );
}

#[test]
fn a_value_that_is_not_a_number_stays_a_string_for_the_canonical_parser_to_name() {
    let text = "kind,occurred_at,subject.type,subject.id,value,currency\no,2026-11-20T10:15:00Z,order,1,12 EUR,EUR\n";
    let rows = all(&mut open(text, &Mapping::default(), None).unwrap());
    assert_eq!(rows[0].value.as_ref().unwrap()["value"], "12 EUR");
    let errors = parse_event(rows[0].value.clone().unwrap(), "import", Utc::now(), "").unwrap_err();
    assert_eq!(errors[0].field, "value");
}

#[test]
fn map_renames_headers_and_ignores_columns_and_kind_defaults() {
    let mapping = Mapping::new(&[
        ("Order".into(), "subject.id".into()),
        ("Email".into(), "identity.email".into()),
        ("Notes".into(), String::new()),
    ]);
    let text = "Order,occurred_at,subject.type,Email,Notes,kind\n\
                7,2026-11-20T10:15:00Z,order,a@b.example,call back,\n\
                8,2026-11-20T10:15:00Z,order,,,refund_completed\n";
    let rows = all(&mut open(text, &mapping, Some("offline_sale")).unwrap());
    assert_eq!(
        rows[0].value.as_ref().unwrap(),
        &json!({"subject": {"id": "7", "type": "order"}, "occurred_at": "2026-11-20T10:15:00Z",
                "identity": {"email": "a@b.example"}, "kind": "offline_sale"})
    );
    assert_eq!(rows[1].value.as_ref().unwrap()["kind"], "refund_completed");
}

#[test]
fn bad_rows_carry_their_line_number_and_the_next_rows_still_read() {
    let text = "kind,occurred_at,subject.type,subject.id,items\n\
                o,2026-11-20T10:15:00Z,order,1\n\
                o,2026-11-20T10:15:00Z,order,2,[not json\n\
                o,\"2026-11-20T10:15:00Z\",order,\"multi\nline\",\n\
                o,2026-11-20T10:15:00Z,order,4,\n";
    let mut r = open(text, &Mapping::default(), None).unwrap();
    let (rows, raws): (Vec<Row>, Vec<String>) =
        std::iter::from_fn(|| r.next_row().unwrap().map(|row| (row, r.raw()))).unzip();
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3, 4, 6]);
    let e = rows[0].value.as_ref().unwrap_err();
    assert_eq!(e[0].message, "has 4 fields; the header has 5");
    assert_eq!(raws[0], "o,2026-11-20T10:15:00Z,order,1");
    let e = rows[1].value.as_ref().unwrap_err();
    assert_eq!((e[0].field.as_str(), e[0].code), ("items", "malformed"));
    assert_eq!(rows[2].value.as_ref().unwrap()["subject"]["id"], "multi\nline");
    assert_eq!(raws[2], "o,2026-11-20T10:15:00Z,order,\"multi\nline\",");
    assert!(rows[3].value.is_ok());
}

#[test]
fn header_problems_are_all_reported_before_any_row() {
    let p = header_problems("kind,occured_at,subject,identity.mail,value,value\n", &Mapping::default(), None);
    for needle in [
        "column 'occured_at' is not a canonical field",
        "column 'subject' is a structured field",
        "column 'identity.mail' is not a canonical field",
        "two columns are 'value'",
        "no column 'occurred_at'",
        "no column 'subject.id'",
    ] {
        assert!(p.contains(needle), "{needle} missing from:\n{p}");
    }
    let p = header_problems("occurred_at,subject.type,subject.id\n", &Mapping::default(), None);
    assert!(p.contains("no column 'kind' (or give --kind)"), "{p}");
    let p = header_problems(
        "kind,occurred_at,subject.type,subject.id\n",
        &Mapping::new(&[("Mail".into(), "identity.email".into())]),
        None,
    );
    assert!(p.contains("--map Mail=…: there is no column 'Mail'"), "{p}");
    let p = header_problems(
        "kind,occurred_at,subject.type,subject.id,attributes,attributes.x\n",
        &Mapping::default(),
        None,
    );
    assert!(p.contains("columns 'attributes' and 'attributes.x' overlap"), "{p}");
    assert!(open("occurred_at,subject.type,subject.id\n", &Mapping::default(), Some("offline_sale")).is_ok());
}

#[test]
fn crlf_bom_and_resuming_at_a_recorded_position() {
    let text = "\u{feff}kind,occurred_at,subject.type,subject.id\r\n\
                a,2026-11-20T10:15:00Z,order,1\r\n\
                b,2026-11-20T10:15:00Z,order,2\r\n\
                c,2026-11-20T10:15:00Z,order,\"3\"\r\n";
    let mut r = open(text, &Mapping::default(), None).unwrap();
    let first = r.next_row().unwrap().unwrap();
    assert_eq!((first.line, first.value.unwrap()["kind"].as_str()), (2, Some("a")));
    let at = r.position();
    let options = CsvOptions { delimiter: b',', mapping: &Mapping::default(), default_kind: None };
    let mut resumed = CsvRows::open(Cursor::new(text.as_bytes().to_vec()), &options, Some(at)).unwrap();
    let rest = all(&mut resumed);
    assert_eq!(rest.iter().map(|r| r.line).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(rest[0].value.as_ref().unwrap()["kind"], "b");
    assert_eq!(rest[1].value.as_ref().unwrap()["subject"]["id"], "3", "no '\\r' left on a quoted last field");
    assert_eq!(resumed.position().offset, text.len() as u64);
}

#[test]
fn semicolons_and_rows_of_empty_cells() {
    let options = CsvOptions { delimiter: b';', mapping: &Mapping::default(), default_kind: None };
    let text =
        "kind;occurred_at;subject.type;subject.id;value;currency\n;;;;;\no;2026-11-20T10:15:00Z;order;1;1.5;EUR\n";
    let rows = all(&mut CsvRows::open(Cursor::new(text.as_bytes().to_vec()), &options, None).unwrap());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].line, 3);
    assert_eq!(rows[0].value.as_ref().unwrap()["value"], 1.5);
}
