//! A run that selects tests: their pytest node ids, for commands that run pytest.
//!
//! pytest's JUnit report names a test by `classname` (the dotted path of its module from the
//! rootdir, then its classes) and `name` (the function, with its parameter id). The node id is
//! the module's file path, then `::` before each class and the function:
//! `tests.test_app.TestX` + `test_a[1]` → `tests/test_app.py::TestX::test_a[1]`. Which dotted
//! parts are classes is guessed from pytest's defaults: the first part that starts with an
//! upper-case letter begins the classes (`python_classes = Test*`; modules `test_*.py` are lower
//! case). Packages or modules with upper-case names, classes with lower-case ones, or a rootdir
//! other than the run's working directory give node ids pytest does not find: such a suite
//! should read `RUNLEDGER_TESTS` instead.

use crate::command::SelectedTest;

/// The node id pytest knows `test` by (see the module's comment for the mapping's limits).
pub fn node_id(test: &SelectedTest) -> String {
    let parts: Vec<&str> = test
        .classname
        .split('.')
        .filter(|p| !p.is_empty())
        .collect();
    let classes_from = parts
        .iter()
        .position(|part| part.starts_with(|c: char| c.is_ascii_uppercase()))
        .unwrap_or(parts.len());
    let (modules, classes) = parts.split_at(classes_from);
    let mut id = String::new();
    if !modules.is_empty() {
        id.push_str(&modules.join("/"));
        id.push_str(".py");
    }
    for part in classes.iter().chain(std::iter::once(&test.name.as_str())) {
        if !id.is_empty() {
            id.push_str("::");
        }
        id.push_str(part);
    }
    id
}

/// True when `command` is one pytest invocation that node ids can be appended to: its first
/// word is `pytest` or `py.test` (or a path ending so), or a `python…` interpreter followed by
/// `-m pytest`; and it holds nothing after which an appended word would land elsewhere (`;`,
/// `&`, `|`, a newline, `#`, a backquote or `$(`).
pub fn is_pytest(command: &str) -> bool {
    if command.contains([';', '&', '|', '\n', '\r', '#', '`']) || command.contains("$(") {
        return false;
    }
    let mut words = command.split_whitespace();
    let Some(first) = words.next() else {
        return false;
    };
    let program = first
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(first)
        .trim_end_matches(".exe");
    match program {
        "pytest" | "py.test" => true,
        python if python.starts_with("python") => {
            words.next() == Some("-m") && words.next() == Some("pytest")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(classname: &str, name: &str) -> SelectedTest {
        SelectedTest {
            classname: classname.into(),
            name: name.into(),
        }
    }

    #[test]
    fn node_ids_from_junit_names() {
        let cases = [
            (
                "tests.test_app.TestX",
                "test_a",
                "tests/test_app.py::TestX::test_a",
            ),
            (
                "tests.test_app",
                "test_b[1-x]",
                "tests/test_app.py::test_b[1-x]",
            ),
            ("test_top", "test_c", "test_top.py::test_c"),
            (
                "t.test_m.TestA.TestInner",
                "test_d",
                "t/test_m.py::TestA::TestInner::test_d",
            ),
            ("", "test_e", "test_e"),
        ];
        for (classname, name, expected) in cases {
            assert_eq!(node_id(&test(classname, name)), expected);
        }
    }

    #[test]
    fn pytest_commands_are_recognised() {
        for yes in [
            "pytest",
            "pytest -q --junitxml=junit.xml",
            "  py.test -x",
            "/opt/venv/bin/pytest -q",
            "python -m pytest -q",
            "python3.12 -m pytest",
            r"C:\venv\Scripts\python.exe -m pytest",
        ] {
            assert!(is_pytest(yes), "{yes}");
        }
        for no in [
            "",
            "make test",
            "python run_tests.py",
            "python -m unittest",
            "pytest -q; echo done",
            "pytest && true",
            "pytest | tee log",
            "pytest # comment",
            "pytest $(cat args)",
            "pytest\necho",
            "pytestx",
        ] {
            assert!(!is_pytest(no), "{no:?}");
        }
    }
}
