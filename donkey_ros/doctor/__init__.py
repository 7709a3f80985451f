"""`donkey-ros doctor`: a checklist of what a car needs, each failure with its fix.

``checks`` holds one small function per check (each runs on any machine and reports what it finds);
``doctor`` loads the car's parameter file, runs them in order and prints the checklist.
"""
