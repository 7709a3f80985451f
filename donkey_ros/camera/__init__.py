"""Camera node: OpenCV (V4L2), Picamera2 and file sources publishing camera/image_raw."""
