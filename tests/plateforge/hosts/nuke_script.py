"""A small reader for Nuke's TCL-like script syntax (.nk, .gizmo), enough to check the gizmos.

A script is commands, one per line (outside quotes and braces); a word is bare, "quoted" (with
backslash escapes) or {braced} (nested, kept raw). A command ending in a braced word whose first
word is a class name (``Write {…}``) is a node; its body is read again as knob commands.
Unbalanced braces, brackets or quotes are a :class:`ScriptError` naming the line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Command", "Node", "ScriptError", "parse", "split_words"]


class ScriptError(ValueError):
    pass


@dataclass
class Command:
    words: list[str]
    line: int


@dataclass
class Node:
    cls: str
    knobs: list[Command]
    line: int
    #: addUserKnob specs: knob name -> (type id, words of the spec)
    user_knobs: dict[str, tuple[int, list[str]]] = field(default_factory=dict)

    def knob(self, name: str) -> str | None:
        for command in self.knobs:
            if command.words[0] == name:
                return " ".join(command.words[1:])
        return None

    @property
    def name(self) -> str | None:
        return self.knob("name")


def _braced(text: str, i: int, line: int) -> tuple[str, int, int]:
    depth, start = 0, i
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "\n":
            line += 1
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1, line
        i += 1
    raise ScriptError(f"line {line}: unbalanced '{{'")


def _quoted(text: str, i: int, line: int) -> tuple[str, int, int]:
    out, i = [], i + 1
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "[": "[", "]": "]", "{": "{", "}": "}", "$": "$"}
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(escapes.get(text[i + 1], "\\" + text[i + 1]))
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1, line
        if char == "\n":
            line += 1
        out.append(char)
        i += 1
    raise ScriptError(f"line {line}: unterminated quote")


def _bare(text: str, i: int, line: int) -> tuple[str, int]:
    start, depth = i, 0
    while i < len(text):
        char = text[i]
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ScriptError(f"line {line}: unbalanced ']'")
        elif char in " \t\n" and depth == 0:
            break
        elif char == "}" and depth == 0:
            raise ScriptError(f"line {line}: unbalanced '}}'")
        i += 1
    if depth:
        raise ScriptError(f"line {line}: unbalanced '['")
    return text[start:i], i


def split_words(text: str, first_line: int = 1) -> list[Command]:
    """Commands of ``text``: words per line, with braces and quotes honoured."""
    commands: list[Command] = []
    words: list[str] = []
    i, line, start_line = 0, first_line, first_line
    while i < len(text):
        char = text[i]
        if char == "\n":
            if words:
                commands.append(Command(words, start_line))
                words = []
            line += 1
            i += 1
        elif char in " \t\r":
            i += 1
        elif char == "#" and not words:
            while i < len(text) and text[i] != "\n":
                i += 1
        else:
            if not words:
                start_line = line
            if char == "{":
                word, i, line = _braced(text, i, line)
            elif char == '"':
                word, i, line = _quoted(text, i, line)
            else:
                word, i = _bare(text, i, line)
            words.append(word)
    if words:
        commands.append(Command(words, start_line))
    return commands


def _user_knob(spec: str, line: int) -> tuple[str, tuple[int, list[str]]]:
    words = split_words(spec, line)
    if len(words) != 1 or len(words[0].words) < 2 or not words[0].words[0].isdigit():
        raise ScriptError(f"line {line}: addUserKnob needs {{TYPE NAME ...}}, got {{{spec}}}")
    flat = words[0].words
    return flat[1], (int(flat[0]), flat[2:])


def parse(text: str) -> tuple[list[Node], list[Command]]:
    """The nodes of a script, in order, and its other commands (version, set, push, end_group)."""
    nodes: list[Node] = []
    others: list[Command] = []
    for command in split_words(text):
        head = command.words[0]
        if len(command.words) == 2 and head[:1].isupper() and head.isidentifier():
            body = split_words(command.words[1], command.line)
            node = Node(head, [], command.line)
            for knob in body:
                if knob.words[0] == "addUserKnob":
                    if len(knob.words) != 2:
                        raise ScriptError(f"line {knob.line}: addUserKnob takes one braced spec")
                    name, spec = _user_knob(knob.words[1], knob.line)
                    if name in node.user_knobs:
                        raise ScriptError(f"line {knob.line}: knob {name!r} added twice")
                    node.user_knobs[name] = spec
                else:
                    node.knobs.append(knob)
            nodes.append(node)
        else:
            others.append(command)
    return nodes, others
