#!/usr/bin/env python3
"""doxygen_filter.py FILE - a public header as Doxygen should read it (Doxygen's INPUT_FILTER).

nabla's headers use plain C comments: a comment above a declaration says what it does, a
comment after a field or constant on its line says what that is, and the file opens with
"/* nabla/x.h - what it holds". Doxygen reads only /** comments, so this turns
  - the opening comment into the file's documentation (the text after the dash, and @file),
  - a comment on lines of its own, right above code, into "/**" (the dashes of a
    "/* ---- title ----" dropped); one followed by a blank line or another comment stays plain,
  - a comment after code on its line into "/**<",
  - the umbrella header's opening comment (nabla.h) into the main page, and in any comment a
    word with a <placeholder> or a __name__ into `code` (not an HTML tag, not bold text), and
    an indented example into @code ... @endcode,
without moving any line, so Doxygen's warnings name the header's real lines. Nothing else
changes; the headers stay plain C.
"""
import re
import sys

OPENING = re.compile(r"^/\* (?:nabla/)?[\w.]+\.h - ")
BANNER = re.compile(r"^ -{2,} ?(.*?) ?-*( \*/)?$")
# nb_<algo>_opts (a placeholder, not an HTML tag), __metadata__ (a name, not bold text)
CODE_WORD = re.compile(r"(?<![`\w<])((?:\w|[.<>])*<\w+>(?:\w|[.<>])*|__\w+__)(?![`\w])")


def plain(text):
    """Comment text with placeholders and dunder names as code, safe from Markdown and HTML
    (Doxygen keeps text in double quotes as it is)."""
    parts = text.split('"')
    for k in range(0, len(parts), 2):
        parts[k] = CODE_WORD.sub(r"`\1`", parts[k])
    return '"'.join(parts)


CODE_LINE = re.compile(r"^(\s*\*)( {3,}\S.*?)(\s*\*/)?(\n?)$")


def code_blocks(lines, i, j):
    """Mark the examples in comment lines i..j as @code ... @endcode: runs of lines indented
    two spaces or more past the " * " (the continuation lines of a "- " list item excepted)."""
    k = i + 1
    while k <= j:
        if not CODE_LINE.match(lines[k]):
            k += 1
            continue
        end = k
        while end + 1 <= j and CODE_LINE.match(lines[end + 1]):
            end += 1
        before = lines[k - 1].lstrip().lstrip("/*").strip()
        if not before.startswith("- "):
            lines[k - 1] = lines[k - 1].rstrip("\n") + " @code{.c}\n"
            m = CODE_LINE.match(lines[end])
            lines[end] = m.group(1) + m.group(2) + " @endcode" + (m.group(3) or "") + m.group(4)
        k = end + 1


def comment_end(lines, i, col):
    """The line on which the comment opened at lines[i][col:] closes."""
    j, text = i, lines[i][col + 2:]
    while "*/" not in text and j + 1 < len(lines):
        j += 1
        text = lines[j]
    return j


def convert(text, umbrella):
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        col = line.find("/*")
        if col < 0 or stripped.startswith("#include"):
            i += 1
            continue
        j = comment_end(lines, i, col)
        for k in range(i, j + 1):
            head, tail = (line[:col], line[col:]) if k == i else ("", lines[k])
            lines[k] = head + plain(tail)
        line = lines[i]
        if stripped.startswith("/**"):
            pass
        elif i == 0 and OPENING.match(line):  # the file's own documentation
            if umbrella:  # nabla.h: the main page
                lines[0] = OPENING.sub("/** @mainpage nabla - ", line, count=1)
            else:
                lines[0] = OPENING.sub("/** ", line, count=1)
                lines[j] = lines[j].replace("*/", "@file */", 1)
        elif line[:col].strip():  # after code: documents that field or constant
            lines[i] = line[:col] + "/**<" + line[col + 2:]
        else:  # on lines of its own: documents what follows, if code follows at once
            after = lines[j + 1].strip() if j + 1 < len(lines) else ""
            if after and not after.startswith(("/*", "#if", "#endif", "}")):
                lines[i] = line[:col] + "/**" + BANNER.sub(r" \1\2", line[col + 2:])
        if lines[i].lstrip().startswith("/**"):
            code_blocks(lines, i, j)
        i = j + 1
    return "".join(lines)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(convert(f.read(), sys.argv[1].endswith("/nabla.h")))


if __name__ == "__main__":
    main()
