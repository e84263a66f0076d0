# plateforge for Nuke (runs in every Nuke session, GUI or `nuke -x`): puts the plateforge client
# installed for this Nuke's Python on sys.path, adds the gizmos, and the preference knobs.
# Installed and wired into ~/.nuke/init.py by `plateforge nuke install`.
import plateforge_nuke

plateforge_nuke.bootstrap()
