"""``gptterm completion``: shell completion scripts generated from the command parsers.

A script holds the grammar as data (commands, subcommands, flags, which flags
take a value, ``choices=``), so completing costs no Python start, except for
values that change: local model names and language codes, which the script
asks of ``gptterm completion --values models|languages`` as you type (that path
imports no Hub client, no llama.cpp). The bash and zsh scripts share their
tables and the walk that finds the command path; fish has its own syntax.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from typing import Mapping, Sequence

from gptterm.cli.args import COMMANDS, PARSERS, arguments, prompt_parser, subcommands
from gptterm.errors import UsageError

Offer = tuple[str, ...] | str | None  # choices, the name of a DYNAMIC list, or nothing (files, free text)


@dataclass
class Option:
    flags: Sequence[str]
    help: str
    takes_value: bool
    offer: Offer


@dataclass
class Node:
    """A place in the grammar: gptterm itself (path ''), a command ('models') or a subcommand ('models rm')."""

    path: str
    subs: dict[str, str]  # the subcommands that may follow: name -> help
    options: list[Option]
    positional: Offer

    def flags(self, *, with_value: bool = False) -> list[str]:
        return [f for o in self.options if o.takes_value or not with_value for f in o.flags]


def _offer(action: argparse.Action) -> Offer:
    dynamic = getattr(action, "complete", None)
    return dynamic or (tuple(map(str, action.choices)) if action.choices else None)


def nodes() -> list[Node]:
    """Every place in the grammar, gptterm itself first."""
    found: list[Node] = []

    def walk(path: str, parser: argparse.ArgumentParser,
             children: Mapping[str, tuple[argparse.ArgumentParser, str]]) -> None:
        positionals = [a for a in arguments(parser) if not a.option_strings]
        found.append(Node(path, {name: text for name, (_, text) in children.items()},
                          [Option(a.option_strings, (a.help or "").replace("%%", "%"), a.nargs != 0, _offer(a))
                           for a in arguments(parser) if a.option_strings],
                          _offer(positionals[0]) if positionals else None))
        for name, (child, _) in children.items():
            walk(f"{path} {name}".lstrip(), child, subcommands(child))

    walk("", prompt_parser(), {name: (PARSERS[name](), text) for name, text in COMMANDS.items()})
    return found


def run_completion(ns: argparse.Namespace) -> int:
    if ns.values:
        sys.stdout.writelines(f"{value}\n" for value in _values(ns.values))
    elif ns.shell:
        sys.stdout.write(SCRIPTS[ns.shell](nodes()))
    else:
        raise UsageError("name a shell: gptterm completion bash|zsh|fish (see 'gptterm completion --help')")
    return 0


def _values(name: str) -> list[str]:
    if name == "models":
        from gptterm.models.store import list_models  # only this kind of value needs it: completion runs on every Tab

        return [m.name for m in list_models()]
    if name == "templates":
        from gptterm.templates.library import names  # only this kind of value needs it: completion runs on every Tab

        return names()
    from gptterm.assets import languages  # only this kind of value needs it: completion runs on every Tab

    return list(languages())


# -- bash and zsh ------------------------------------------------------------------

# Valid in both shells: finds the command path in the words before the cursor, as the dispatcher does
# (flags that take a value skip it; the first other word that is no subcommand ends the search).
SH_WALK = r"""
_gptterm_walk() {  # the words between 'gptterm' and the cursor; sets node, subs, flags, takes, skip, open
    local word
    node='' skip='' open=1
    _gptterm_node ''
    for word in "$@"; do
        if [[ -n $skip ]]; then
            [[ $word == '=' ]] || skip=''  # bash splits --flag=value at the '='
        elif [[ $word == -* ]]; then
            [[ " $takes " == *" $word "* ]] && skip=1
        elif [[ -n $open && " $subs " == *" $word "* ]]; then
            node=${node:+$node }$word
            _gptterm_node "$node"
        else
            open=''  # a prompt, a file or a name: no subcommand follows
        fi
    done
}
"""

BASH_MAIN = r"""
_gptterm() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} node subs flags takes skip open
    _gptterm_walk "${COMP_WORDS[@]:1:COMP_CWORD-1}"
    [[ $prev == '=' ]] && prev=${COMP_WORDS[COMP_CWORD-2]}
    if [[ -n $skip ]]; then
        COMPREPLY=($(compgen -W "$(_gptterm_values "$node" "$prev" "${COMP_WORDS[0]}")" -- "$cur"))
    elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "${open:+$subs} $(_gptterm_values "$node" '' "${COMP_WORDS[0]}")" -- "$cur"))
    fi
}
complete -o default -F _gptterm gptterm
"""

ZSH_MAIN = r"""
_gptterm() {
    local node subs flags takes skip open
    local -a offer
    _gptterm_walk "${(@)words[2,CURRENT-1]}"
    if [[ -n $skip ]]; then
        offer=(${=$(_gptterm_values "$node" "$words[CURRENT-1]" "$words[1]")})
    elif [[ $PREFIX == -* ]]; then
        offer=(${=flags})
    else
        offer=(${=${open:+$subs}} ${=$(_gptterm_values "$node" '' "$words[1]")})
    fi
    if (( $#offer )); then compadd -a offer; else _files; fi
}
compdef _gptterm gptterm
"""


def _sh_tables(found: list[Node]) -> str:
    q = shlex.quote
    lines = ["_gptterm_node() {  # $1: a command path; sets subs, flags and takes (the flags with a value)",
             "    case $1 in"]
    for n in found:
        lines.append(f"        {q(n.path)}) subs={q(' '.join(n.subs))} flags={q(' '.join(n.flags()))}"
                     f" takes={q(' '.join(n.flags(with_value=True)))} ;;")
    lines += ["    esac", "}", "",
              "_gptterm_values() {  # $1: a command path, $2: a flag ('' for a positional), $3: the gptterm command",
              '    case "$1|$2" in']
    for offer, patterns in _offers(found).items():
        what = (f'"$3" completion --values {offer} 2>/dev/null' if isinstance(offer, str)
                else f"echo {q(' '.join(offer))}")
        lines.append(f"        {'|'.join(q(p) for p in patterns)}) {what} ;;")
    lines += ["    esac", "}"]
    return "\n".join(lines) + "\n"


def _offers(found: list[Node]) -> dict[tuple[str, ...] | str, list[str]]:
    """What to offer -> the 'path|flag' places that offer it ('path|' for a positional)."""
    out: dict[tuple[str, ...] | str, list[str]] = {}
    for n in found:
        for o in n.options:
            if o.offer:
                for flag in o.flags:
                    out.setdefault(o.offer, []).append(f"{n.path}|{flag}")
        if n.positional:
            out.setdefault(n.positional, []).append(f"{n.path}|")
    return out


def bash_script(found: list[Node]) -> str:
    return ("# gptterm completion for bash: eval \"$(gptterm completion bash)\" in ~/.bashrc\n"
            + _sh_tables(found) + SH_WALK + BASH_MAIN)


def zsh_script(found: list[Node]) -> str:
    return ("#compdef gptterm\n# gptterm completion for zsh: eval \"$(gptterm completion zsh)\" in ~/.zshrc, "
            "after compinit\n" + _sh_tables(found) + SH_WALK + ZSH_MAIN)


# -- fish --------------------------------------------------------------------------

FISH_WALK = r"""
function __gptterm_walk --description 'print the command path before the cursor, then 1 if a subcommand may follow'
    set -l node ''
    set -l skip 0
    set -l open 1
    __gptterm_node ''
    for word in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
        else if string match -q -- '-*' $word
            contains -- $word $__gptterm_takes; and set skip 1
        else if test $open = 1; and contains -- $word $__gptterm_subs
            set node (string trim -- "$node $word")
            __gptterm_node $node
        else
            set open 0
        end
    end
    printf '%s\n' $node $open
end

function __gptterm_at --argument-names node want_open
    set -l here (__gptterm_walk)
    test "$here[1]" = "$node"; and begin; test -z "$want_open"; or test "$here[2]" = 1; end
end
"""


def _fq(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_flag(flag: str) -> str:
    if flag.startswith("--"):
        return f"-l {flag[2:]}"
    return f"-s {flag[1:]}" if len(flag) == 2 else f"-o {flag[1:]}"  # -o: a long flag with one dash (-ngl)


def _fish_values(offer: Offer) -> str:
    return f"(gptterm completion --values {offer})" if isinstance(offer, str) else " ".join(offer or ())


def fish_script(found: list[Node]) -> str:
    lines = ["# gptterm completion for fish: gptterm completion fish > ~/.config/fish/completions/gptterm.fish",
             "function __gptterm_node --argument-names node", "    switch $node"]
    for n in found:
        lines += [f"        case {_fq(n.path)}",
                  f"            set -g __gptterm_subs {' '.join(map(_fq, n.subs))}",
                  f"            set -g __gptterm_takes {' '.join(map(_fq, n.flags(with_value=True)))}"]
    lines += ["    end", "end", FISH_WALK]
    for n in found:
        at = f"__gptterm_at {_fq(n.path)}"
        for name, text in n.subs.items():
            lines.append(f"complete -c gptterm -f -n {_fq(at + ' open')} -a {_fq(name)} -d {_fq(text)}")
        for o in n.options:
            spec = " ".join(_fish_flag(f) for f in o.flags)
            if o.takes_value:
                spec += " -r" + (f" -f -a {_fq(_fish_values(o.offer))}" if o.offer else "")
            lines.append(f"complete -c gptterm -n {_fq(at)} {spec} -d {_fq(o.help)}")
        if n.positional:
            lines.append(f"complete -c gptterm -f -n {_fq(at)} -a {_fq(_fish_values(n.positional))}")
    return "\n".join(lines) + "\n"


SCRIPTS = {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}
