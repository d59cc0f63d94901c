// Tests start servers with the same launchers drills and the demo use.
@_exported import LifeboatConnectors
