"""Coming from DonkeyCar: read its tubs, configs and models (see docs/donkeycar.md).

- ``tub``: DonkeyCar Tub v2 folders as plain records (no ROS needed).
- ``tub_import``: `donkey-ros import-tub`: tubs -> a rosbag2 bag on this project's topics.
- ``config``: a DonkeyCar ``config.py``/``myconfig.py`` read as data (never executed).
- ``config_import``: `donkey-ros import-config`: that config -> a ROS 2 parameter file.
"""
