# Verification messages in English: also the fallback for every message another file lacks.
# Variables: $service (delivery.service_name), $code (six digits), $minutes (until it expires).

email-subject = Your { $service } verification code
email-intro = Your { $service } verification code is:
email-expiry =
    { $minutes ->
        [one] It expires in { $minutes } minute.
       *[other] It expires in { $minutes } minutes.
    }
email-enter = Enter it where you asked for it.
email-ignore = If you did not ask for a code, ignore this message.
email-never-share = Never share the code with anyone: nobody from { $service } will ever ask you for it.

# One SMS segment: GSM-7 characters only, at most 160 with the longest service name.
sms-body =
    { $minutes ->
        [one] Your { $service } verification code is: { $code }. It expires in { $minutes } minute. Don't share it with anyone; we will never ask you for it.
       *[other] Your { $service } verification code is: { $code }. It expires in { $minutes } minutes. Don't share it with anyone; we will never ask you for it.
    }
