print("vdpactl")
