# plateforge for Nuke, GUI sessions only: the plateforge toolbar and the Nodes menu entries.
import plateforge_nuke

plateforge_nuke.add_menus()
