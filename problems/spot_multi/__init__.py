"""Built-in problem `spot_multi`; the simulator it uses lives in `problems._spot_sim`."""
