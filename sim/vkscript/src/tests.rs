//! End-to-end tests of `run`: programs in, JSON or VK error codes out, against a fake
//! `ApiHost` that plays VK's `friends.get`, `friends.getMutual`, `users.get` and
//! `utils.getServerTime`, and fails `friends.get` for "private" user ids.

use serde_json::{json, Map, Value as Json};

use crate::{run, ApiCallError, ApiHost, ExecuteError, Limits, ScriptError};

/// Users whose friend lists are private (error 30) or who are deleted (error 18).
const PRIVATE_USER: i64 = 30;
const DELETED_USER: i64 = 18;

#[derive(Default)]
struct FakeVk {
    calls: Vec<(String, Map<String, Json>)>,
}

fn int_param(params: &Map<String, Json>, name: &str) -> Option<i64> {
    match params.get(name)? {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn id_list(params: &Map<String, Json>, name: &str) -> Vec<i64> {
    match params.get(name) {
        Some(Json::String(s)) => s
            .split(',')
            .filter_map(|id| id.trim().parse().ok())
            .collect(),
        Some(Json::Array(ids)) => ids.iter().filter_map(Json::as_i64).collect(),
        Some(Json::Number(n)) => n.as_i64().into_iter().collect(),
        _ => Vec::new(),
    }
}

impl ApiHost for FakeVk {
    fn call(&mut self, method: &str, params: &Map<String, Json>) -> Result<Json, ApiCallError> {
        self.calls.push((method.to_string(), params.clone()));
        match method {
            "friends.get" => match int_param(params, "user_id") {
                Some(PRIVATE_USER) => Err(ApiCallError::new(30, "This profile is private")),
                Some(DELETED_USER) => Err(ApiCallError::new(18, "User was deleted or banned")),
                Some(id) => Ok(json!({"count": 2, "items": [id * 10 + 1, id * 10 + 2]})),
                None => Err(ApiCallError::new(
                    100,
                    "One of the parameters specified was missing or invalid",
                )),
            },
            "friends.getMutual" => {
                let source = int_param(params, "source_uid").unwrap_or(0);
                let answer: Vec<Json> = id_list(params, "target_uids")
                    .into_iter()
                    .map(|t| json!({"id": t, "common_friends": [source + t], "common_count": 1}))
                    .collect();
                Ok(Json::Array(answer))
            }
            "users.get" => {
                let users: Vec<Json> = id_list(params, "user_ids")
                    .into_iter()
                    .map(|id| json!({"id": id, "first_name": format!("User{id}")}))
                    .collect();
                Ok(Json::Array(users))
            }
            "utils.getServerTime" => Ok(json!(1_700_000_000)),
            _ => Ok(json!({"method": method, "params": params})),
        }
    }
}

fn args_of(args: Json) -> Map<String, Json> {
    match args {
        Json::Object(map) => map,
        _ => Map::new(),
    }
}

fn run_with(
    code: &str,
    args: Json,
    limits: &Limits,
) -> (Result<crate::ExecuteOutcome, ScriptError>, FakeVk) {
    let mut host = FakeVk::default();
    let result = run(code, &args_of(args), &mut host, limits);
    (result, host)
}

fn eval(code: &str, args: Json) -> Result<Json, ScriptError> {
    run_with(code, args, &Limits::default())
        .0
        .map(|o| o.response)
}

/// The public shapes clients send, from the brief.
const FRIENDS_BY_ID: &str = r#"
var ids = Args.ids.split(","); var i = 0; var r = {};
while (i < ids.length) { var id = parseInt(ids[i]); r[id] = API.friends.get({"user_id": id, "count": 5000}); i = i + 1; }
return r;
"#;

const MUTUAL_PARALLEL: &str = r#"
var s = parseInt(Args.source);
var ids = Args.targets.split(",");
var res = [];
var i = 0;
while (i < ids.length) {
    var t = ids.slice(i, i + 2).join(",");
    res.push(API.friends.getMutual({"source_uid": s, "target_uids": t}));
    i = i + 2;
}
return {"ids": ids, "res": res};
"#;

const USERS_AND_TIME: &str =
    r#"return [API.users.get({"user_ids": "1,2"})@.id, API.utils.getServerTime()];"#;

#[test]
fn language_table() {
    let cases: &[(&str, Json, Json)] = &[
        // literals and declarations
        ("return 1;", json!({}), json!(1)),
        ("return -9007199254740993;", json!({}), json!(-9007199254740993_i64)),
        ("return 1.5;", json!({}), json!(1.5)),
        ("return 'a\\'b' + \"c\\n\";", json!({}), json!("a'bc\n")),
        ("return [true, false, null];", json!({}), json!([true, false, null])),
        ("return {a: 1, \"b\": [2], 3: 'x'};", json!({}), json!({"a": 1, "b": [2], "3": "x"})),
        ("var a = 1, b = a + 1, c; return [a, b, c];", json!({}), json!([1, 2, null])),
        ("var a = 5; var a; return a;", json!({}), json!(5)),
        ("x = 3; return x;", json!({}), json!(3)),
        ("", json!({}), json!(null)),
        ("var a = 1;", json!({}), json!(null)),
        ("return;", json!({}), json!(null)),
        ("return undefined;", json!({}), json!(null)),
        // lenient semicolons and comments
        ("var a = 1\nvar b = 2 // two\nreturn a + b", json!({}), json!(3)),
        ("/* head */ return /* mid */ 4 // tail", json!({}), json!(4)),
        ("if (1) { return 1 } else { return 2 }", json!({}), json!(1)),
        // assignment operators
        ("var a = 10; a += 5; a -= 3; return a;", json!({}), json!(12)),
        ("var a = 10; a *= 3; a /= 2; a %= 4; return a;", json!({}), json!(3)),
        ("var s = 'a'; s += 1; return s;", json!({}), json!("a1")),
        ("var i = 0; var j = i++; var k = ++i; return [i, j, k];", json!({}), json!([2, 0, 2])),
        ("var i = 5; i--; --i; return i;", json!({}), json!(3)),
        ("var a = b = 2; return [a, b];", json!({}), json!([2, 2])),
        // control flow
        ("var a = 0; if (a) { a = 1; } else if (a == 0) { a = 2; } else { a = 3; } return a;", json!({}), json!(2)),
        ("var i = 0, s = 0; while (i < 10) { s = s + i; i = i + 1; } return s;", json!({}), json!(45)),
        ("var i = 0; while (true) { i = i + 1; if (i == 7) return i; }", json!({}), json!(7)),
        ("var i = 0; while (i < 3) i = i + 1; return i;", json!({}), json!(3)),
        ("return 1; return 2;", json!({}), json!(1)),
        // arithmetic
        ("return [7 / 2, 6 / 3, 7 % 3, -7 % 3, 2 * 3 + 4, 2 * (3 + 4)];", json!({}), json!([3.5, 2, 1, -1, 10, 14])),
        ("return [1 - 2 - 3, 12 / 2 / 3, -(2 + 3), - -4];", json!({}), json!([-4, 2, -5, 4])),
        ("return 0.1 + 0.2;", json!({}), json!(0.30000000000000004)),
        ("return 9223372036854775807 + 1;", json!({}), json!(9223372036854775808.0)),
        ("return 1 / 0;", json!({}), json!(null)),
        // + on strings and arrays
        ("return 'id' + 5 + 1;", json!({}), json!("id51")),
        ("return 5 + 1 + 'id';", json!({}), json!("6id")),
        ("return 'x' + 1.5 + null + true;", json!({}), json!("x1.5nulltrue")),
        ("return 'a' + [1, 2];", json!({}), json!("a1,2")),
        ("return [1, 2] + [3];", json!({}), json!([1, 2, 3])),
        // comparisons and logic
        ("return [1 == 1, 1 === 1.0, 1 != 2, 1 !== 1, 'a' == 'a', null == null];", json!({}), json!([true, true, true, false, true, true])),
        ("return [1 == '1', 0 == false, null == false, [] == []];", json!({}), json!([false, false, false, false])),
        ("return [1 < 2, 2 <= 2, 3 > 4, 4 >= 4.5, 'a' < 'b', 'b' >= 'ba'];", json!({}), json!([true, true, false, false, true, false])),
        ("return [1 && 2, 0 && 2, 0 || 'x', 'y' || 3, !0, !'a', !null, ![]];", json!({}), json!([2, 0, "x", "y", true, false, true, false])),
        ("var a = 0; var r = false && (a = 1); var s = true || (a = 2); return [a, r, s];", json!({}), json!([0, false, true])),
        ("return [0 ? 'y' : 'n', 'x' ? 'y' : 'n', '' ? 1 : 0.0 ? 2 : 3];", json!({}), json!(["n", "y", 3])),
        // member and index access
        ("var o = {a: {b: [10, 20]}}; return [o.a.b[1], o['a']['b'][0], o.c, o.a.b[5], o.a.b.length];", json!({}), json!([20, 10, null, null, 2])),
        ("var a = [1, 2, 3]; return [a[-1], a['1'], a[1.0], a['length']];", json!({}), json!([null, 2, 2, 3])),
        ("var s = 'héllo'; return [s.length, s[1], s[10]];", json!({}), json!([5, "é", null])),
        ("var n = null; return [n.x, (5).y, false.items];", json!({}), json!([null, null, null])),
        // assignment to members and indices
        ("var r = {}; r[123] = 'a'; r['x'] = 1; r.y = 2; r[1.5] = 3; return r;", json!({}), json!({"123": "a", "x": 1, "y": 2, "1.5": 3})),
        ("var r = {}; r[5] = 1; return r['5'] + r[5];", json!({}), json!(2)),
        ("var o = {a: {}}; o.a.b = 1; o.a['c'] = [0]; o.a.c[0] = 9; o.a.c[2] = 7; return o;", json!({}), json!({"a": {"b": 1, "c": [9, null, 7]}})),
        ("var a = [1]; a[1] = 2; a[0] += 10; return a;", json!({}), json!([11, 2])),
        // reference semantics
        ("var a = [1]; var b = a; b.push(2); return a;", json!({}), json!([1, 2])),
        ("var o = {}; var l = [o, o]; o.x = 1; return l;", json!({}), json!([{"x": 1}, {"x": 1}])),
        ("var a = [1]; return a == a;", json!({}), json!(true)),
        // array methods
        ("var a = [1, 2]; var n = a.push(3, 4); return [n, a];", json!({}), json!([4, [1, 2, 3, 4]])),
        ("var a = [1, 2, 3]; var x = a.pop(); var y = a.shift(); return [x, y, a, [].pop(), [].shift()];", json!({}), json!([3, 1, [2], null, null])),
        ("var a = [3]; var n = a.unshift(1, 2); return [n, a];", json!({}), json!([3, [1, 2, 3]])),
        ("var a = [0, 1, 2, 3, 4]; return [a.slice(1, 3), a.slice(-2), a.slice(3, 1), a.slice(), a];", json!({}), json!([[1, 2], [3, 4], [], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]])),
        ("var a = [0, 1, 2, 3, 4]; var r = a.splice(1, 2); return [r, a];", json!({}), json!([[1, 2], [0, 3, 4]])),
        ("var a = [0, 1, 2]; var r = a.splice(1); return [r, a];", json!({}), json!([[1, 2], [0]])),
        ("var a = [0, 1, 2]; var r = a.splice(-1, 5, 'x', 'y'); return [r, a];", json!({}), json!([[2], [0, 1, "x", "y"]])),
        ("var a = [5, '5', 6, 5]; return [a.indexOf(5), a.indexOf('5'), a.indexOf(7), a.indexOf(5, 1)];", json!({}), json!([0, 1, -1, 3])),
        ("return [[1, 2, 3].join(','), [1, null, 'a'].join('-'), [1, 2].join(), [].join(',')];", json!({}), json!(["1,2,3", "1--a", "1,2", ""])),
        // string methods
        ("return ['a,b,,c'.split(','), 'abc'.split(''), ''.split(','), 'a b'.split(' ', 1)];", json!({}), json!([["a", "b", "", "c"], ["a", "b", "c"], [""], ["a"]])),
        ("var s = 'abcdef'; return [s.substr(2), s.substr(1, 3), s.substr(-2, 1), s.substr(2, -1)];", json!({}), json!(["cdef", "bcd", "e", ""])),
        ("var s = 'abcdef'; return [s.slice(1, 3), s.slice(-3), s.indexOf('cd'), s.indexOf('x'), s.indexOf('c', 3)];", json!({}), json!(["bc", "def", 2, -1, -1])),
        ("return 'привет, мир'.indexOf('мир');", json!({}), json!(8)),
        // global functions
        ("return [parseInt('42'), parseInt(' -7px'), parseInt(12.9), parseInt('ff', 16), parseInt('x')];", json!({}), json!([42, -7, 12, 255, null])),
        ("return [parseDouble('1.25'), parseDouble('3'), parseDouble(2), parseFloat('-0.5e1')];", json!({}), json!([1.25, 3, 2, -5])),
        // Args
        ("return Args.ids;", json!({"ids": "1,2,3"}), json!("1,2,3")),
        ("return [Args.missing, Args['ids'].split(',').length];", json!({"ids": "1,2,3"}), json!([null, 3])),
        ("return parseInt(Args.a) + parseInt(Args.b);", json!({"a": "2", "b": "40"}), json!(42)),
        // the @. filter
        ("var l = [{id: 1, n: 'a'}, {id: 2}, 5]; return [l@.id, l@.n];", json!({}), json!([[1, 2, null], ["a", null, null]])),
        ("var r = {count: 2, items: [{id: 7}, {id: 8}]}; return r@.id;", json!({}), json!([7, 8])),
        ("return [null@.id, {a: 1}@.a];", json!({}), json!([null, null])),
        // API calls
        ("return API.friends.get({user_id: 1});", json!({}), json!({"count": 2, "items": [11, 12]})),
        ("return API.friends.get({user_id: 2}).items;", json!({}), json!([21, 22])),
        ("return API.friends.get({user_id: 30});", json!({}), json!(false)),
        ("var f = API.friends.get({user_id: 30}); return [f.items, f@.id, !f, f == false];", json!({}), json!([null, null, true, true])),
        ("return API.x.y({a: [1, 'b'], c: {d: 2.5}});", json!({}), json!({"method": "x.y", "params": {"a": [1, "b"], "c": {"d": 2.5}}})),
        ("return API.users.get({user_ids: API.friends.get({user_id: 4}).items.join(',')})@.id;", json!({}), json!([41, 42])),
        // the client shapes from the brief
        (FRIENDS_BY_ID, json!({"ids": "1,2,30"}), json!({"1": {"count": 2, "items": [11, 12]}, "2": {"count": 2, "items": [21, 22]}, "30": false})),
        (MUTUAL_PARALLEL, json!({"source": "100", "targets": "1,2,3"}), json!({
            "ids": ["1", "2", "3"],
            "res": [
                [{"id": 1, "common_friends": [101], "common_count": 1}, {"id": 2, "common_friends": [102], "common_count": 1}],
                [{"id": 3, "common_friends": [103], "common_count": 1}]
            ]
        })),
        (USERS_AND_TIME, json!({}), json!([[1, 2], 1_700_000_000])),
    ];
    for (code, args, want) in cases {
        match eval(code, args.clone()) {
            Ok(got) => assert_eq!(&got, want, "program: {code}"),
            Err(err) => panic!("program: {code}\nfailed: {err}"),
        }
    }
}

#[test]
fn error_table() {
    let cases: &[(&str, i64, &str)] = &[
        ("return 1 +;", 12, "Unable to compile code: "),
        ("var a = ;", 12, "Unable to compile code: "),
        ("return 'open", 12, "unterminated string"),
        ("if (1) {", 12, "'}' expected"),
        ("a.nope();", 12, "unknown method 'nope'"),
        ("alert(1);", 12, "unknown function 'alert'"),
        ("for (var i = 0; i < 1; i++) {}", 12, "'for' is not supported"),
        ("return 1 2;", 12, "';' expected"),
        ("return 1 < 'a';", 13, "Runtime error occurred during code invocation: Comparing values of different or unsupported types"),
        ("return null > 0;", 13, "Comparing values of different or unsupported types"),
        ("return 'a' - 1;", 13, "Operation '-' is not supported for string and number"),
        ("return {} + 1;", 13, "Operation '+' is not supported"),
        ("return -'a';", 13, "Operation '-' is not supported for string"),
        ("return nope;", 13, "Variable 'nope' is not defined"),
        ("x += 1; return x;", 13, "Variable 'x' is not defined"),
        ("return 'abc'.push(1);", 13, "Method 'push' is not supported for string"),
        ("return [1].split(',');", 13, "Method 'split' is not supported for array"),
        ("var n = null; return n.split(',');", 13, "Method 'split' is not supported for null"),
        ("return Args.ids.split(',');", 13, "Method 'split' is not supported for null"),
        ("var s = 'a'; s.x = 1;", 13, "Cannot assign a field of string"),
        ("var n = null; n[0] = 1;", 13, "Cannot assign a field of null"),
        ("var a = []; a['x'] = 1;", 13, "Invalid array index x"),
        ("var a = []; a[-1] = 1;", 13, "Invalid array index -1"),
        ("var a = []; a[100000000] = 1;", 13, "Invalid array index"),
        ("var r = {}; r.n += 1;", 13, "Operation '+' is not supported for null and number"),
        ("var s = 'a'; s++;", 13, "Operation '++' is not supported"),
        ("return API.friends.get(5);", 13, "Parameters of friends.get must be an object"),
        ("var a = []; a.push(a); return a;", 13, "Value is nested too deeply"),
        ("while (true) {}", 13, "Too many operations"),
        ("var a = [1]; var i = 0; while (i < 40) { a = [a, a]; i = i + 1; } return a;", 13, "Response size is too big"),
        ("var s = 'xxxxxxxxxxxxxxxx'; while (true) { s = s + s; }", 13, "Too many operations"),
        ("var a = [1]; var i = 0; while (i < 40) { a = [a, a]; i = i + 1; } return '' + a;", 13, "Too many operations"),
        ("var a = [1]; var i = 0; while (i < 40) { a = [a, a]; i = i + 1; } return a.join();", 13, "Too many operations"),
        ("var a = [1]; var i = 0; while (i < 40) { a = [a, a]; i = i + 1; } var r = {}; r[a] = 1;", 13, "Too many operations"),
    ];
    for (code, want_code, want_msg) in cases {
        let err = match eval(code, json!({})) {
            Ok(got) => panic!("program: {code}\nexpected an error, got {got}"),
            Err(err) => err,
        };
        assert_eq!(err.error_code(), *want_code, "program: {code}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(want_msg),
            "program: {code}\nmessage: {msg}\nwanted: {want_msg}"
        );
    }
}

#[test]
fn error_messages_follow_vk() {
    let err = eval("var a = 1;\nreturn a +;", json!({})).unwrap_err();
    assert_eq!(err.error_code(), 12);
    assert_eq!(
        err.to_string(),
        "Unable to compile code: unexpected ';' in line 2"
    );
    let err = eval("var a = 1;\n\nreturn a < 'x';", json!({})).unwrap_err();
    assert_eq!(err.error_code(), 13);
    assert_eq!(
        err.to_string(),
        "Runtime error occurred during code invocation: Comparing values of different or unsupported types"
    );
}

#[test]
fn twenty_six_calls_exceed_the_default_limit() {
    let calls = |n: usize| {
        format!("var i = 0; var r = []; while (i < {n}) {{ r.push(API.utils.getServerTime()); i = i + 1; }} return r.length;")
    };
    let (outcome, host) = run_with(&calls(25), json!({}), &Limits::default());
    let outcome = outcome.unwrap();
    assert_eq!(outcome.response, json!(25));
    assert_eq!(outcome.api_calls, 25);
    assert_eq!(host.calls.len(), 25);

    let (err, host) = run_with(&calls(26), json!({}), &Limits::default());
    let err = err.unwrap_err();
    assert_eq!(err.error_code(), 13);
    assert_eq!(
        err.to_string(),
        "Runtime error occurred during code invocation: Too many API calls"
    );
    assert_eq!(
        host.calls.len(),
        25,
        "the 26th call must not reach the host"
    );

    let limits = Limits {
        max_api_calls: 2,
        ..Limits::default()
    };
    let (err, _) = run_with(&calls(3), json!({}), &limits);
    assert_eq!(err.unwrap_err().error_code(), 13);
}

#[test]
fn operations_budget_is_enforced_and_reported() {
    let code = "var i = 0; while (i < 100) { i = i + 1; } return i;";
    let (outcome, _) = run_with(code, json!({}), &Limits::default());
    let outcome = outcome.unwrap();
    assert_eq!(outcome.response, json!(100));
    assert!(
        outcome.operations > 100 && outcome.operations < 2_000,
        "{}",
        outcome.operations
    );

    let tight = Limits {
        max_operations: outcome.operations - 1,
        ..Limits::default()
    };
    let (err, _) = run_with(code, json!({}), &tight);
    let err = err.unwrap_err();
    assert_eq!(err.error_code(), 13);
    assert!(err.to_string().ends_with("Too many operations"));

    let exact = Limits {
        max_operations: outcome.operations,
        ..Limits::default()
    };
    assert!(run_with(code, json!({}), &exact).0.is_ok());
}

#[test]
fn failed_calls_are_false_and_attributed() {
    let (outcome, host) = run_with(
        FRIENDS_BY_ID,
        json!({"ids": "1,30,2,18"}),
        &Limits::default(),
    );
    let outcome = outcome.unwrap();
    assert_eq!(
        outcome.response,
        json!({"1": {"count": 2, "items": [11, 12]}, "2": {"count": 2, "items": [21, 22]}, "18": false, "30": false})
    );
    assert_eq!(
        outcome.execute_errors,
        vec![
            ExecuteError {
                method: "friends.get".into(),
                error_code: 30,
                error_msg: "This profile is private".into()
            },
            ExecuteError {
                method: "friends.get".into(),
                error_code: 18,
                error_msg: "User was deleted or banned".into()
            },
        ]
    );
    assert_eq!(outcome.api_calls, 4);
    // Parameters reach the host as JSON values, numbers as numbers.
    assert_eq!(host.calls[0].0, "friends.get");
    assert_eq!(
        host.calls[0].1,
        args_of(json!({"user_id": 1, "count": 5000}))
    );
}

#[test]
fn deep_but_allowed_programs_run_on_a_small_stack() {
    // The simulator runs scripts on tokio worker threads (2 MiB stacks). The deepest
    // programs the parser accepts must fit in half of that in a debug build (they need
    // about 768 KiB; release builds far less).
    let nesting = crate::MAX_NESTING - 2;
    let height = crate::MAX_DEPTH - 2;
    let nested_parens = format!(
        "return {}1{};",
        "(1 + ".repeat(nesting),
        ")".repeat(nesting)
    );
    let nested_arrays = format!("return {}1{};", "[".repeat(nesting), "]".repeat(nesting));
    let nested_calls = format!(
        "return {}'1'{};",
        "parseInt(".repeat(nesting),
        ")".repeat(nesting)
    );
    let long_chain = format!("return 0{};", " + 1".repeat(height));
    let not_chain = format!("return {}0;", "!".repeat(height - 1));
    let ifs = nesting / 2 - 1;
    // The worst case: the deepest statement nesting around the tallest operator chain.
    let ifs_and_chain = format!(
        "{}return 0{};{}",
        "if (1) {".repeat(ifs),
        " + 1".repeat(height),
        "}".repeat(ifs)
    );
    let programs = [
        (nested_parens, json!(nesting + 1)),
        (nested_arrays, json!(null)),
        (nested_calls, json!(1)),
        (long_chain, json!(height)),
        (not_chain, json!(height.is_multiple_of(2))),
        (ifs_and_chain, json!(height)),
    ];
    let handle = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            for (code, want) in programs {
                match eval(&code, json!({})) {
                    Ok(got) if want.is_null() => assert!(got.is_array()),
                    Ok(got) => assert_eq!(got, want),
                    Err(err) => panic!("{err}: {code}"),
                }
            }
        })
        .unwrap();
    handle.join().unwrap();
}

#[test]
fn never_panics_on_garbage() {
    let samples = [
        FRIENDS_BY_ID,
        MUTUAL_PARALLEL,
        USERS_AND_TIME,
        "var a = [1, {b: 'c'}]; a[3] = a@.b; return a.slice(-1).join(',') + a.length * 2 / 0 % 3;",
        "var s = 'x\\u0041'; if (s.indexOf('A') >= 0 && !false || null) { s += s.substr(1, 2); } return s.split('');",
    ];
    let mut programs: Vec<String> = Vec::new();
    for sample in samples {
        let chars: Vec<char> = sample.chars().collect();
        // Every prefix and every suffix.
        for i in 0..=chars.len() {
            programs.push(chars[..i].iter().collect());
            programs.push(chars[i..].iter().collect());
        }
        // Deterministic pseudo-random mutations: drop, duplicate or replace one character.
        let alphabet: Vec<char> = "(){}[];,.@:?+-*/%=!<>&|'\"\\ \n0123456789aAz_$\u{e9}"
            .chars()
            .collect();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..300 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let pos = (seed % (chars.len() as u64 + 1)) as usize;
            let pick = alphabet[(seed >> 32) as usize % alphabet.len()];
            let mut mutated = chars.clone();
            match seed % 3 {
                0 if pos < mutated.len() => {
                    mutated.remove(pos);
                }
                1 => mutated.insert(pos, pick),
                _ if pos < mutated.len() => mutated[pos] = pick,
                _ => mutated.push(pick),
            }
            programs.push(mutated.into_iter().collect());
        }
    }
    programs.extend(
        [
            "",
            ";",
            "}",
            "{",
            "(",
            "@",
            "@.",
            "a@",
            "API",
            "API.",
            "API.a.b",
            "API.a.b(",
            "var",
            "return [",
            "return {",
            "return {a",
            "return {a:",
            "'\\",
            "/*",
            "0x",
            "1e",
            "1e+",
            ".",
            "a..b",
            "a[",
            "a[]",
            "++",
            "1++",
            "a = = b",
            "return -9223372036854775808;",
            "return 9223372036854775807 * 9223372036854775807;",
            "return parseInt('-9223372036854775808');",
            "return [].splice(-9223372036854775807, 9223372036854775807);",
            "return 'abc'.substr(9223372036854775807, 9223372036854775807);",
            "return 'abc'.slice(-9223372036854775807);",
            "return 'a'.split('', -1);",
        ]
        .map(String::from),
    );
    let args = json!({"ids": "1,2,x", "source": "5", "targets": "1"});
    let small = Limits {
        max_api_calls: 3,
        max_operations: 2_000,
    };
    for code in &programs {
        let mut host = FakeVk::default();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(code, &args_of(args.clone()), &mut host, &small)
        }));
        assert!(result.is_ok(), "panicked on: {code:?}");
    }
    assert!(programs.len() > 500, "{}", programs.len());
}
