"""Built-in problem `spot_single`; the simulator it uses lives in `problems._spot_sim`."""
