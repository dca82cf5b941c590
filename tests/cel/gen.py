#!/usr/bin/env python3
"""Random cases for the differential test of the CEL subset (run.sh).

Prints one JSON object a line, {"expr", "driver", "attributes"}: selector
expressions mostly inside the subset isthmusd evaluates (bridge/cel.h),
some slightly outside it (calls, macros, arithmetic, doubles, type errors,
syntax errors), each over random devices shaped like isthmusd's cores
(some attributes missing, of another type, versions, lists).  The same
seed gives the same cases.

    gen.py [--seed N] [--count N]
"""
import argparse
import json
import random

DRIVER = "cpu.isthmus.io"
K8S = "resource.kubernetes.io"
OTHER = "other.example.com"
DOMAINS = [DRIVER, DRIVER, DRIVER, K8S, K8S, OTHER, "", "a/b"]
NAMES = ["numaNode", "socket", "l3cache", "core", "cpus", "threads", "coreType",
         "model", "x", "in_use"]
STRINGS = ["", "0-3", "0,96", "big", "little", "performance", "efficiency", "cpu.isthmus.io",
           "Big", "a b", "é", "日本", "0", "1", "true", "a\"b", "a\\b", "a\nb", "tab\there"]
VERSIONS = ["1.2.3", "1.2.3-rc.1", "1.2.3+build.5", "0.0.0", "1.2.3-rc.1+x", "2.0.0-alpha",
            "01.2.3", "1.2", "v1.2.3", "1.2.3-", "1.2.3-01"]


def rint(r):
    return r.choice([0, 0, 1, 1, 2, 3, 4, 7, 8, 95, 96, 191, -1, 2**31, -2**63, 2**63 - 1])


def device(r):
    """A device's attributes: a core of ours, perturbed."""
    attrs = {}
    core = r.randrange(192)
    base = {
        K8S + "/numaNode": {"int": core // 48},
        "socket": {"int": core // 96},
        "l3cache": {"int": core // 16},
        "core": {"int": core},
        "cpus": {"string": r.choice(["%d,%d" % (core, core + 192), str(core)])},
        "threads": {"int": r.choice([1, 2])},
        "coreType": {"string": r.choice(["performance", "efficiency", "big", "little"])},
    }
    for key, val in base.items():
        roll = r.random()
        if roll < 0.12:
            continue  # missing
        if key != K8S + "/numaNode" and r.random() < 0.3:
            key = DRIVER + "/" + key  # qualified spelling of the same attribute
        if roll < 0.22:
            val = attr_value(r)  # another type
        attrs[key] = val
    for _ in range(r.choice([0, 0, 0, 1, 2])):
        attrs[r.choice(DOMAINS[3:6]) + "/" + r.choice(NAMES)] = attr_value(r)
    name = r.choice(NAMES)
    if r.random() < 0.03 and name not in attrs and DRIVER + "/" + name not in attrs:
        # Never both spellings of one name: the reference would pick either.
        attrs[name] = r.choice([{}, {"version": r.choice(VERSIONS)}])
    return attrs


def attr_value(r):
    roll = r.random()
    if roll < 0.3:
        return {"int": rint(r)}
    if roll < 0.55:
        return {"string": r.choice(STRINGS)}
    if roll < 0.75:
        return {"bool": r.random() < 0.5}
    if roll < 0.9:
        return {"version": r.choice(VERSIONS[:6])}
    kind = r.choice(["ints", "strings", "bools"])
    n = r.choice([0, 1, 2])
    gen = {"ints": lambda: rint(r), "strings": lambda: r.choice(STRINGS[:8]),
           "bools": lambda: r.random() < 0.5}[kind]
    return {kind: [gen() for _ in range(n)]}


def string_lit(r, s=None):
    if s is None:
        s = r.choice(STRINGS)
    q = r.choice(['"', '"', "'"])
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == q:
            out.append("\\" + q)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append(r.choice(["\\t", "\t"]))
        else:
            out.append(ch)
    return q + "".join(out) + q


def int_lit(r):
    roll = r.random()
    if roll < 0.05:
        return r.choice(["0x1f", "0xFF", "9223372036854775807", "-9223372036854775808",
                         "9223372036854775808", "007"])
    return str(rint(r))


def literal(r):
    roll = r.random()
    if roll < 0.45:
        return int_lit(r)
    if roll < 0.8:
        return string_lit(r)
    return r.choice(["true", "false"])


# The attributes of our cores and the literals that fit them.
REAL = [(K8S, "numaNode", "int"), (DRIVER, "socket", "int"), (DRIVER, "l3cache", "int"),
        (DRIVER, "core", "int"), (DRIVER, "cpus", "string"), (DRIVER, "threads", "int"),
        (DRIVER, "coreType", "string")]


def attr_ref(r, real=None):
    if real is None and r.random() < 0.75:
        real = r.choice(REAL)
    domain, name = (real[0], real[1]) if real else (r.choice(DOMAINS), r.choice(NAMES))
    head = 'device.attributes[%s]' % string_lit(r, domain)
    if r.random() < 0.7:
        return head + "." + name
    return head + "[%s]" % string_lit(r, name)


def sp(r):
    return r.choice(["", " ", " ", " ", "  ", "\n", "\t"])


def operand(r, depth):
    roll = r.random()
    if roll < 0.45:
        return attr_ref(r)
    if roll < 0.75:
        return literal(r)
    if roll < 0.85:
        return "device.driver"
    if depth > 0:
        return "(" + expr(r, depth - 1) + ")"
    return literal(r)


def list_lit(r):
    kind = r.choice(["int", "string", "bool", "mixed", "empty"])
    n = r.choice([1, 2, 3, 4])
    if kind == "empty":
        items = []
    elif kind == "mixed":
        items = [literal(r) for _ in range(n)]
    else:
        items = [{"int": lambda: int_lit(r), "string": lambda: string_lit(r),
                  "bool": lambda: r.choice(["true", "false"])}[kind]() for _ in range(n)]
    trailing = "," if items and r.random() < 0.1 else ""
    return "[" + ("," + sp(r)).join(items) + trailing + "]"


def atom(r, depth):
    """A boolean-ish term."""
    roll = r.random()
    if roll < 0.3:
        # An attribute against a literal of its type, the common selector.
        real = r.choice(REAL)
        lit = int_lit(r) if real[2] == "int" else string_lit(r)
        op = r.choice(["==", "!=", "<", "<=", ">", ">=", "==", "=="])
        sides = [attr_ref(r, real), lit]
        r.shuffle(sides)
        return sides[0] + sp(r) + op + sp(r) + sides[1]
    if roll < 0.45:
        op = r.choice(["==", "!=", "<", "<=", ">", ">=", "==", "=="])
        return operand(r, depth) + sp(r) + op + sp(r) + operand(r, depth)
    if roll < 0.6:
        if r.random() < 0.5:
            real = r.choice(REAL)
            items = [int_lit(r) if real[2] == "int" else string_lit(r)
                     for _ in range(r.choice([1, 2, 3, 5]))]
            return attr_ref(r, real) + " in [" + ", ".join(items) + "]"
        return operand(r, depth) + " in " + list_lit(r)
    if roll < 0.68:
        return '%s in device.attributes[%s]' % (string_lit(r, r.choice(NAMES)),
                                                 string_lit(r, r.choice(DOMAINS)))
    if roll < 0.78 and depth > 0:
        return "!" * r.choice([1, 1, 2, 3]) + sp(r) + "(" + expr(r, depth - 1) + ")"
    if roll < 0.84:
        return "!" * r.choice([0, 1, 2]) + attr_ref(r)
    if roll < 0.9:
        return r.choice(["true", "false"])
    if depth > 0:
        return "(" + expr(r, depth - 1) + ")"
    return attr_ref(r)


def expr(r, depth):
    n = r.choice([1, 1, 1, 2, 2, 3])
    terms = [atom(r, depth) for _ in range(n)]
    out = terms[0]
    for t in terms[1:]:
        out += sp(r) + r.choice(["&&", "||"]) + sp(r) + t
    return out


# Slightly outside the subset: valid CEL the subset refuses, type errors and
# syntax errors.
OUTSIDE = [
    'has(device.attributes["cpu.isthmus.io"].socket)',
    'size(device.attributes["cpu.isthmus.io"].cpus) > 2',
    'device.attributes["cpu.isthmus.io"].cpus.startsWith("0")',
    'device.attributes["cpu.isthmus.io"].core + 1 == 2',
    'device.attributes["cpu.isthmus.io"].core % 2 == 0',
    '-device.attributes["cpu.isthmus.io"].core < 0',
    'device.attributes["cpu.isthmus.io"].core == 1.0',
    'device.attributes["cpu.isthmus.io"].core == 1u',
    'device.attributes["cpu.isthmus.io"].socket == 0 ? true : false',
    'device.capacity["cpu.isthmus.io"].cores > 0',
    'device.allowMultipleAllocations',
    '{"a": 1}["a"] == 1',
    'r"raw" == "raw"',
    'b"bytes" == b"bytes"',
    '"""triple""" == "triple"',
    'device.attributes.foo.bar == 1',
    '[1, 2][0] == 1',
    'null == null',
    '.device.driver == "x"',
    'device.attributes["cpu.isthmus.io"].?socket.orValue(0) == 0',
    'cel.bind(d, device.attributes["cpu.isthmus.io"], d.socket == 0)',
    'device.attributes["cpu.isthmus.io"].all(k, k != "")',
    'int(device.attributes["cpu.isthmus.io"].core) == 1',
    '"\\x41" == "A"',
    '"\\u00e9" == "é"',
    '"\\101" == "A"',
    'device.driver.matches("^cpu")',
    '"a" + "b" == "ab"',
    'type(device.driver) == string',
    'device.attributes["cpu.isthmus.io"].core in [1, 2] ? 1 : 2',
    'device == device',
    'device.attributes["cpu.isthmus.io"] == {}',
    'device.attributes["cpu.isthmus.io"].core.foo == 1',
    'device.attributes[device.driver].core == 1',
    'device.attributes["cpu.isthmus.io"].core in device.attributes["cpu.isthmus.io"]',
    'device.driver in device.attributes["cpu.isthmus.io"]',
    '1 in device.attributes["cpu.isthmus.io"]',
    '[1, 2] == [1, 2]',
    '1 in [1, [2]]',
    '1 in [device.attributes["cpu.isthmus.io"].core]',
    'device.attributes["cpu.isthmus.io"].if == 1',
    'device.attributes["cpu.isthmus.io"].`core` == 1',
    # type errors
    '1 == "1"', '!1', '1 && true', 'true || "a"', '1', '"a"', 'device.driver',
    '1 < true', 'device.driver == 1', '"a" in [1, 2]', '(1 == 1) < 2', '1 < 2 < 3',
    'device.attributes["cpu.isthmus.io"]', 'device.foo', 'device.driver.foo == 1',
    '!"a" == false', 'true in ["a"]',
    # syntax errors
    '', '(', '1 ==', '== 1', '1 = 1', 'a & b', 'true |', '"unterminated', "'x\n'",
    'device.', 'device.attributes[', 'device.attributes["a"', '[1,,2]', '[,]', '1 2',
    '"\\q" == "q"', 'true # false', 'device.attributes["a"].in == 1', '0x', '1e', 'true)',
    '!', '!!', 'in', '9223372036854775808 > 0', '-9223372036854775809 < 0',
]


def outside(r):
    roll = r.random()
    if roll < 0.5:
        return r.choice(OUTSIDE)
    if roll < 0.65:
        # Break a valid expression.
        e = expr(r, 2)
        i = r.randrange(len(e) + 1)
        return e[:i] + r.choice(["(", ")", "[", "]", ",", "=", "&", "|", "!", "?", ":", "+",
                                 ".", '"', "#", "1", "x"]) + e[i:]
    if roll < 0.75:
        e = expr(r, 2)
        i = r.randrange(len(e))
        return e[:i] + e[i + 1:]
    if roll < 0.82:
        n = r.choice([31, 32, 33, 40])
        return "(" * n + "true" + ")" * n
    if roll < 0.88:
        n = r.choice([255, 256, 257, 300])
        return "device.attributes[\"cpu.isthmus.io\"].core in [" + ", ".join(
            str(i) for i in range(n)) + "]"
    if roll < 0.93:
        n = r.choice([2000, 2047, 2048, 2100])
        return " || ".join(["false"] * (n // 2)) + " || true" if n < 2100 else "true" + " " * 10300
    # A term from the subset joined to an outside one.
    return expr(r, 1) + r.choice([" && ", " || "]) + r.choice(OUTSIDE[:40])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=4000, help="expressions (2 devices each)")
    args = ap.parse_args()
    r = random.Random(args.seed)
    for _ in range(args.count):
        e = outside(r) if r.random() < 0.2 else expr(r, r.choice([0, 1, 2, 3]))
        for _ in range(2):
            driver = DRIVER if r.random() < 0.9 else "gpu.example.com"
            print(json.dumps({"expr": e, "driver": driver, "attributes": device(r)},
                             ensure_ascii=False))


if __name__ == "__main__":
    main()
