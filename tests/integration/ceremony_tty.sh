#!/usr/bin/env bash
# ceremony_tty.sh - interactive ceremony through a real terminal (tmux):
# confirmations typed at each step, share cards typed line by line without
# echo, a mistyped card named and typed again, then the intermediate is
# made; a declined step stops the ceremony with nothing done.
source "$(dirname "$0")/../lib.sh"
scratch
kr_lsan_softhsm
command -v tmux >/dev/null || { skip "interactive ceremony" "tmux missing"; done_testing; exit 0; }
S="$T/st"; C="$T/cards"; SCR="$TOP/ceremony/scripts"
kr() { "$KEYROOM" -q --state "$S" "$@"; }
kr_init_state "$S" "$T/init.pin" &&
	kr --yes ceremony run "$SCR/genesis.yaml" --init-pin "file:$T/init.pin" --cards "$C" --media "$T/m0" \
	--no-prompt >"$T/g.out" 2>&1 || { nok "genesis"; done_testing; exit 1; }
ok "genesis (automated) made the cards"

# Each pane gets its own tmux server: a server told to exit goes on for a
# moment, and a new-session on its socket then fails ("server exited
# unexpectedly") about one time in ten.
NSRV=0
SOCK="kr$$-0"
TM() { tmux -L "$SOCK" "$@"; }
trap 'TM kill-server 2>/dev/null; rm -rf "$T"' EXIT
# start CMD...: run in a fresh 200x60 pane; output also kept in $T/pane.out.
start() {
	TM kill-server 2>/dev/null
	NSRV=$((NSRV + 1)); SOCK="kr$$-$NSRV"
	PROMPTS=0
	rm -f "$T/pane.out"
	TM new-session -d -s c -x 200 -y 60 "bash -c '$* 2>&1 | tee $T/pane.out; echo EXIT=\${PIPESTATUS[0]} >>$T/pane.out; sleep 60'" ||
		echo "# tmux new-session failed"
}
# waitfor REGEX [SECONDS]: until the pane (with scrollback) shows REGEX.
waitfor() {
	local i
	for i in $(seq 1 $(( ${2:-20} * 10 ))); do
		TM capture-pane -p -t c -S -3000 2>/dev/null | grep -Eq -- "$1" && return 0
		sleep 0.1
	done
	echo "# timeout waiting for /$1/"; TM capture-pane -p -t c -S -3000 | tail -8 | sed 's/^/#   /'
	return 1
}
count() { TM capture-pane -p -t c -S -3000 | grep -Ec -- "$1"; }
say() { TM send-keys -t c "$1" Enter; }
# typecard FILE: answer six "line N:" prompts with the card's lines, each
# only once its prompt is on the screen (the prompt flushes typed-ahead
# input).
PROMPTS=0
typecard() {
	local line c i
	while IFS= read -r line; do
		case "$line" in '#'*|'') continue;; esac
		for i in $(seq 1 200); do
			c=$(count "line [1-6]:")
			[ "$c" -gt "$PROMPTS" ] && break
			sleep 0.1
		done
		PROMPTS=$c
		say "$line"
	done <"$1"
}
# waitexit: until the command's exit status is in $T/pane.out.
waitexit() {
	local i
	for i in $(seq 1 600); do grep -q "^EXIT=" "$T/pane.out" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

START="$KEYROOM -q --state $S ceremony run $SCR/intermediate.yaml --media $T/m1"
start "$START"
waitfor "Proceed with the ceremony\? type yes or no:" && say yes
waitfor "Proceed with step 1 \(unlock\)\?" && say yes
waitfor "share 1 of 2 for root: type the card" && typecard "$(kr_card "$C" root 1)"
waitfor "share 1 of set [0-9a-f]+ \(Custodian A\): good - 1 of 2 needed" && ok "typed card 1 accepted as it was entered" ||
	nok "typed card 1"
sed '3y/ABCDEFGHIJKLMNOPQRSTUVWXYZ234567/BCDEFGHIJKLMNOPQRSTUVWXYZ234567A/' "$(kr_card "$C" root 3)" >"$T/typo.card"
waitfor "share 2 of 2 for root" && typecard "$T/typo.card"
waitfor "refused: share from tty: share card line 1: checksum [A-Z2-7]{2} does not match \(mistyped\?\)" &&
	ok "a mistyped line is named at once" || nok "mistyped line named"
typecard "$(kr_card "$C" root 3)"
waitfor "token keyroom-root unlocked by shares 1,3" && ok "root unlocked by typed shares 1,3" || nok "root unlocked"
waitfor "Proceed with step 2 \(unlock\)\?" && say yes
waitfor "share 1 of 2 for issuing" && typecard "$(kr_card "$C" issuing 2)"
waitfor "share 2 of 2 for issuing" && typecard "$(kr_card "$C" issuing 3)"
waitfor "token keyroom-issuing unlocked by shares 2,3" && ok "issuing unlocked by typed shares 2,3" || nok "issuing unlocked"
for n in 3 4 5 6 7; do waitfor "Proceed with step $n " && say yes; done
waitexit
grep -q "^EXIT=0" "$T/pane.out" && ok "interactive intermediate ceremony exits 0" || nok "exit status"
grep -q "done: intermediate serial" "$T/pane.out" && [ -f "$S/certs/intermediate.pem" ] &&
	ok "intermediate made" || nok "intermediate made"
TM capture-pane -p -t c -S -3000 | grep -q "$(sed -n '4p' "$(kr_card "$C" root 1)" | cut -c1-9)" &&
	nok "a typed share was echoed" || ok "typed shares were not echoed"
check "intermediate verifies" openssl verify -x509_strict -CAfile "$S/certs/root.pem" "$S/certs/intermediate.pem"

# A declined step: nothing done, exit non-zero, logged as declined.
cat >"$T/decline.yaml" <<'YAML'
ceremony: decline-test
purpose: a participant says no
steps:
  - do: note
    say: Everyone agrees?
  - do: checkpoint
YAML
start "$KEYROOM -q --state $S ceremony run $T/decline.yaml"
waitfor "Proceed with the ceremony\?" && say yes
waitfor "Proceed with step 1 \(note\)\?" && say no
waitexit
grep -q "^EXIT=1" "$T/pane.out" && grep -q "step 1 (note) declined" "$T/pane.out" &&
	ok "a declined step stops the ceremony (exit 1)" || nok "declined step"
# The intermediate ceremony above ended too: look for this one's own end.
kr --json audit list --type ceremony-end 2>/dev/null | grep '"decline-test"' | grep -q '"result": *"declined' &&
	ok "declined ceremony still ends in the log, as declined" || nok "ceremony-end"
done_testing
