use super::*;

/// What pytest 8 writes with `--junitxml` (one failure, one error, one skip, one pass).
const PYTEST: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4" time="0.052" timestamp="2025-01-01T10:00:00.000000+00:00" hostname="lab-01">
<testcase classname="tests.test_math" name="test_add" time="0.001" />
<testcase classname="tests.test_math" name="test_sub" time="0.0025"><failure message="assert 1 == 2">def test_sub():
&gt;       assert 1 == 2
E       assert 1 == 2

tests/test_math.py:5: AssertionError</failure></testcase>
<testcase classname="tests.test_math" name="test_fixture" time="0.000"><error message="failed on setup with &quot;fixture 'db' not found&quot;">fixture 'db' not found</error></testcase>
<testcase classname="tests.test_math" name="test_later" time="0.000"><skipped type="pytest.skip" message="not yet">tests/test_math.py:12: not yet</skipped></testcase>
</testsuite></testsuites>"#;

/// The message of the only test in a `<testsuite>` holding `case`.
fn message_of(case: &str) -> Option<String> {
    let report = parse(format!("<testsuite>{case}</testsuite>").as_bytes()).unwrap();
    let [test] = <[TestResult; 1]>::try_from(report.tests).unwrap();
    test.message
}

#[test]
fn pytest_report() {
    let report = parse(PYTEST.as_bytes()).unwrap();
    let summary = TestSummary {
        passed: 1,
        failed: 1,
        skipped: 1,
        errors: 1,
        quarantined_failed: 0,
    };
    assert_eq!(report.summary, summary);
    assert!(!report.truncated);
    let [pass, fail, error, skip] = report.tests.as_slice() else {
        panic!("4 tests")
    };
    assert_eq!(
        pass,
        &TestResult {
            name: "test_add".into(),
            classname: "tests.test_math".into(),
            status: TestOutcome::Passed,
            duration_ms: 1,
            message: None,
        }
    );
    assert_eq!((fail.status, fail.duration_ms), (TestOutcome::Failed, 3));
    assert_eq!(fail.message.as_deref(), Some("assert 1 == 2"));
    assert_eq!(error.status, TestOutcome::Error);
    assert_eq!(
        error.message.as_deref(),
        Some("failed on setup with \"fixture 'db' not found\"")
    );
    assert_eq!(skip.status, TestOutcome::Skipped);
    assert_eq!(skip.message.as_deref(), Some("not yet"));
}

#[test]
fn element_text_is_the_fallback_message() {
    let xml = r#"<testsuite><testcase name="t"><failure>boom</failure></testcase></testsuite>"#;
    let report = parse(xml.as_bytes()).unwrap();
    assert_eq!(report.tests[0].message.as_deref(), Some("boom"));
    // pytest's traceback, with the attribute emptied: every escaped character comes back.
    let traceback = PYTEST.replace(r#"message="assert 1 == 2""#, r#"message="""#);
    let report = parse(traceback.as_bytes()).unwrap();
    assert_eq!(
        report.tests[1].message.as_deref(),
        Some(
            "def test_sub():\n>       assert 1 == 2\nE       assert 1 == 2\n\n\
             tests/test_math.py:5: AssertionError"
        )
    );
}

#[test]
fn escaped_characters_in_text_and_attributes() {
    let escaped = "&lt;a&gt; &amp;&amp; &quot;b&quot; &apos;c&apos; &#955;&#x3bb; &#60;/a&#62;";
    let plain = "<a> && \"b\" 'c' λλ </a>";
    let in_text = message_of(&format!(
        r#"<testcase name="t"><failure message="">{escaped}</failure></testcase>"#
    ));
    assert_eq!(in_text.as_deref(), Some(plain));
    let in_attribute = message_of(&format!(
        r#"<testcase name="t"><error message="{escaped}">ignored</error></testcase>"#
    ));
    assert_eq!(in_attribute.as_deref(), Some(plain));
    // Escaped names too; a line break in an attribute is a space, unless it is a reference.
    let xml = r#"<testsuite><testcase name="test[&lt;1&gt;]" classname="a&amp;b"><skipped message="x&#10;y
z"/></testcase></testsuite>"#;
    let test = &parse(xml.as_bytes()).unwrap().tests[0];
    assert_eq!(
        (test.name.as_str(), test.classname.as_str()),
        ("test[<1>]", "a&b")
    );
    assert_eq!(test.message.as_deref(), Some("x\ny z"));
}

#[test]
fn cdata_tracebacks_are_kept_exactly() {
    let traceback = "def test():\n>       assert a < b and b > c, \"&amp; stays\"\nE   \
                     AssertionError: <Foo at 0x1> & ]]\n\ntests/t.py:3: AssertionError";
    let message = message_of(&format!(
        "<testcase name=\"t\"><failure><![CDATA[{traceback}]]></failure></testcase>"
    ));
    assert_eq!(message.as_deref(), Some(traceback));
    // Text, references and CDATA sections join into one message.
    let message = message_of(
        "<testcase name=\"t\"><error>a &lt; <![CDATA[<b>]]> &#62; c<!-- not text --></error></testcase>",
    );
    assert_eq!(message.as_deref(), Some("a < <b> > c"));
}

#[test]
fn outer_whitespace_is_trimmed_inner_whitespace_kept() {
    let message = message_of(
        "<testcase name=\"t\"><failure message=\"\">\n   \n    first\n\t  second  \r\n</failure></testcase>",
    );
    assert_eq!(message.as_deref(), Some("first\n\t  second"));
    let message = message_of(
        "<testcase name=\"t\"><failure message=\"  padded  \">text</failure></testcase>",
    );
    assert_eq!(message.as_deref(), Some("padded"));
    // A blank attribute falls back to the text; blank text is no message.
    let message = message_of(
        "<testcase name=\"t\"><failure message=\" \"><![CDATA[  cdata  ]]></failure></testcase>",
    );
    assert_eq!(message.as_deref(), Some("cdata"));
    let message = message_of("<testcase name=\"t\"><failure>&#32;\n</failure></testcase>");
    assert_eq!(message, None);
}

#[test]
fn doctype_processing_instructions_comments_and_other_elements_are_ignored() {
    let xml = r#"<?xml version="1.0"?>
<!DOCTYPE testsuites [ <!ELEMENT testsuites ANY> ]>
<?xml-stylesheet type="text/xsl" href="junit.xsl"?>
<!-- generated -->
<testsuites><?pi inside?><testsuite><properties><property name="n" value="v"/></properties>
<testcase name="t"><system-out>out &lt;</system-out><?pi?><failure message="m"/><system-err>err</system-err></testcase>
</testsuite></testsuites>
<!-- trailing comment --><?pi after?>
"#;
    let report = parse(xml.as_bytes()).unwrap();
    assert_eq!(report.summary.failed, 1);
    assert_eq!(report.tests[0].message.as_deref(), Some("m"));
}

#[test]
fn several_outcomes_failure_then_error_then_skipped_wins() {
    let xml = r#"<testsuite>
        <testcase name="a"><failure message="call"/><error message="teardown"/></testcase>
        <testcase name="b"><skipped message="skip">s</skipped><error>teardown</error></testcase>
    </testsuite>"#;
    let report = parse(xml.as_bytes()).unwrap();
    let outcomes: Vec<_> = report
        .tests
        .iter()
        .map(|t| (t.status, t.message.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (TestOutcome::Failed, Some("call")),
            (TestOutcome::Error, Some("teardown"))
        ]
    );
}

#[test]
fn bare_testsuite_nested_suites_and_missing_attributes() {
    let xml = r#"<testsuite><testcase name="a"/>
        <testsuite name="inner"><testcase/><testcase name="c" time="oops"><failure/></testcase></testsuite>
        </testsuite>"#;
    let report = parse(xml.as_bytes()).unwrap();
    assert_eq!(
        report.summary,
        TestSummary {
            passed: 2,
            failed: 1,
            skipped: 0,
            errors: 0,
            quarantined_failed: 0,
        }
    );
    assert_eq!(
        (
            report.tests[1].name.as_str(),
            report.tests[1].classname.as_str()
        ),
        ("", "")
    );
    assert_eq!(
        (report.tests[2].duration_ms, &report.tests[2].message),
        (0, &None)
    );
}

#[test]
fn huge_messages_and_names_are_cut_on_character_boundaries() {
    let long = "é".repeat(10_000);
    let xml = format!(
        r#"<testsuite><testcase name="{long}" classname="c"><failure message="{long}"/></testcase></testsuite>"#
    );
    let report = parse(xml.as_bytes()).unwrap();
    let test = &report.tests[0];
    assert!(test.name.len() <= MAX_NAME_BYTES && test.name.ends_with('…'));
    let message = test.message.as_deref().unwrap();
    assert!(message.len() <= MAX_MESSAGE_BYTES && message.ends_with('…'));
}

#[test]
fn huge_texts_are_cut_like_attributes() {
    let cut = |text: &str| message_of(&format!("<testcase><error>{text}</error></testcase>"));
    let long = "é".repeat(10_000);
    assert_eq!(cut(&long), Some(truncate(&long, MAX_MESSAGE_BYTES)));
    // Long whitespace between two short texts, in many pieces, still makes the message too long.
    let spread = format!("a{}b", "&#32;".repeat(3 * MAX_MESSAGE_BYTES));
    let expected = format!("a{}b", " ".repeat(3 * MAX_MESSAGE_BYTES));
    assert_eq!(cut(&spread), Some(truncate(&expected, MAX_MESSAGE_BYTES)));
    // Trailing whitespace alone does not.
    let short = format!("ab{}", " ".repeat(3 * MAX_MESSAGE_BYTES));
    assert_eq!(cut(&short).as_deref(), Some("ab"));
}

#[test]
fn many_tests_are_counted_but_the_list_is_bounded() {
    let cases = "<testcase name=\"t\"/>".repeat(MAX_TESTS + 5);
    let report =
        parse(format!("<testsuites><testsuite>{cases}</testsuite></testsuites>").as_bytes())
            .unwrap();
    assert_eq!(report.summary.passed as usize, MAX_TESTS + 5);
    assert_eq!(report.tests.len(), MAX_TESTS);
    assert!(report.truncated);
}

#[test]
fn malformed_documents_are_typed_errors() {
    for bad in [
        "",
        "   ",
        "<testsuite><testcase name=\"a\"></testsuite>",
        "<testsuite><testcase name=\"a\">",
        "<testsuite><testcase name=\"a\"><failure>",
        "<testsuite",
        "\u{0}\u{1}garbage<<",
        "<testsuite></testsuite></testsuite>",
        "<testsuite/><testsuite/>",
        "<testsuite/>trailing",
        "<html><testcase/></html>",
        "<?xml version=\"1.0\"?><!-- only a comment -->",
        "<testsuite><testcase name=\"a&nbsp;b\"/></testsuite>",
        "<testsuite><testcase><failure>&nbsp;</failure></testcase></testsuite>",
        "<testsuite><testcase><failure>a & b</failure></testcase></testsuite>",
        "<testsuite><testcase name=\"a\" name=\"b\"/></testsuite>",
        "<testsuite><testcase name=\"a/></testsuite>",
        "<testsuite><failure>&#0;</failure></testsuite>",
    ] {
        assert!(
            matches!(parse(bad.as_bytes()), Err(JunitError::Malformed(_))),
            "{bad:?}"
        );
    }
    // Not UTF-8 (without a BOM; the UTF-8 BOM is fine).
    let latin1 = b"<testsuite><testcase name=\"caf\xe9\"/></testsuite>";
    assert!(matches!(parse(latin1), Err(JunitError::Malformed(_))));
    let bom = "\u{feff}<testsuite><testcase name=\"caf\u{e9}\"/></testsuite>";
    assert_eq!(parse(bom.as_bytes()).unwrap().tests[0].name, "caf\u{e9}");
    let too_big = vec![b' '; MAX_REPORT_BYTES + 1];
    assert_eq!(
        parse(&too_big),
        Err(JunitError::TooLarge(MAX_REPORT_BYTES + 1))
    );
}

#[test]
fn durations() {
    assert_eq!(duration_ms(1.2345), 1235);
    assert_eq!(duration_ms(-1.0), 0);
    assert_eq!(duration_ms(f64::NAN), 0);
    assert_eq!(duration_ms(1e300), u64::MAX);
}
