# 日本語の認証メッセージ。

email-subject = { $service } の認証コード
email-intro = { $service } の認証コードは次のとおりです：
email-expiry = 有効期限は { $minutes } 分です。
email-enter = コードを要求した画面に入力してください。
email-ignore = コードを要求していない場合は、このメッセージを無視してください。
email-never-share = このコードは誰にも教えないでください。{ $service } の担当者がコードを尋ねることはありません。

# SMS は UCS-2 で 1 通 70 文字まで（最長のサービス名と有効期限を含めて）。
sms-body = { $service }認証コード：{ $code }（{ $minutes }分有効）。誰にも教えないでください。当社から聞くことはありません。
